"""Lambda's part, played in-process: LocalStack's own Lambda service needs Docker images that this
machine cannot fetch, so the suite does what Lambda's pollers and EventBridge do with the messages
LocalStack's notifications put in a queue.

- SQS (``sqs`` and ``sns`` routes): a batch of received messages becomes the event Lambda's SQS
  event source mapping builds (the record fields of LocalStack's own poller,
  ``transform_into_events``, plus ``eventSource``, ``eventSourceARN`` and ``awsRegion``). With
  ``ReportBatchItemFailures`` the function answers
  ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``: every other message of the
  batch is deleted, the listed ones stay for a later delivery; an exception fails the whole
  batch (nothing deleted).
- EventBridge: a rule target invokes the function with the event itself, one event per
  invocation; the queue is only where the test holds the event until it chooses to deliver it.

``Stack`` is one test's bucket, wiring and queue, with the steps the tests are written in.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from handler.app import lambda_handler
from handler.rules.settings import Settings
from localrun.invoke import LocalContext
from tests.infra.localstack_wiring import (
    REGION,
    Clients,
    Notification,
    Queue,
    Route,
    create_bucket,
    receive,
    wire,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import (
        DeleteObjectOutputTypeDef,
        HeadObjectOutputTypeDef,
        PutObjectOutputTypeDef,
    )

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
#: Lambda's default (and the template's maximum) batch size for an SQS event source mapping.
SQS_BATCH_SIZE: Final = 10


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from ``messages`` as ``receive_message`` returned
    them."""
    records = []
    for message in messages:
        attributes = {
            name: {key[:1].lower() + key[1:]: value for key, value in attr.items()}
            for name, attr in (message.get("MessageAttributes") or {}).items()
        }
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def context() -> LocalContext:
    """A context with a request id of its own, as each invocation has."""
    return LocalContext(aws_request_id=str(uuid.uuid4()))


def _invoke_in_worker(event: dict[str, Any]) -> Any:
    """One invocation in a pool process (module level, so that the pool can name it)."""
    return lambda_handler(event, context())


@dataclass
class Stack:
    """One test's bucket, its notification route and the queue that route ends in."""

    clients: Clients
    route: Route
    bucket: str
    queue: Queue
    versioned: bool
    handler: Handler = lambda_handler
    #: ``s3:TestEvent`` messages S3 sent when the route was configured, set aside by ``collect``.
    test_events: list[Notification] = field(default_factory=list)

    @classmethod
    def create(
        cls, clients: Clients, route: Route, *, versioned: bool, handler: Handler = lambda_handler
    ) -> Stack:
        """A new bucket (unique name, so tests never see each other's events) wired by
        ``route``."""
        bucket = f"ls-{route[:3]}-{'v' if versioned else 'u'}-{uuid.uuid4().hex[:16]}"
        create_bucket(clients, bucket, versioned=versioned)
        queue = wire(clients, route, bucket)
        return cls(clients, route, bucket, queue, versioned, handler)

    # --- S3 -----------------------------------------------------------------------------------

    def upload(self, key: str, body: bytes) -> PutObjectOutputTypeDef:
        """Put ``body`` at ``key``: LocalStack notifies by the route, asynchronously."""
        return self.clients.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def delete(self, key: str, version_id: str | None = None) -> DeleteObjectOutputTypeDef:
        """Delete ``key`` (only ``version_id`` where given): LocalStack notifies as for uploads."""
        if version_id is None:
            return self.clients.s3.delete_object(Bucket=self.bucket, Key=key)
        return self.clients.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)

    def has_result(self, key: str) -> bool:
        listing = self.clients.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.result_key(key))
        return bool(listing["KeyCount"])

    def result(self, key: str) -> dict[str, Any]:
        """The result beside input ``key``, parsed with exact decimals."""
        body = self.clients.s3.get_object(Bucket=self.bucket, Key=self.result_key(key))["Body"]
        document: dict[str, Any] = json.loads(body.read(), parse_float=Decimal)
        return document

    def result_head(self, key: str) -> HeadObjectOutputTypeDef:
        """The result's metadata: its ETag and LastModified change with every rewrite."""
        return self.clients.s3.head_object(Bucket=self.bucket, Key=self.result_key(key))

    @staticmethod
    def result_key(key: str) -> str:
        """Where the result of input ``key`` goes (the handler's own rule, default name)."""
        return Settings().result_target("any", key)[1]

    # --- the queue ----------------------------------------------------------------------------

    def collect(self, count: int, *, timeout: float = 30.0) -> list[Notification]:
        """Exactly ``count`` object notifications, received (and held) but not yet delivered."""
        received = receive(self.clients, self.route, self.queue, count, timeout=timeout)
        self.test_events.extend(n for n in received if n.is_test_event)
        notifications = [n for n in received if not n.is_test_event]
        assert len(notifications) == count, (
            f"{self.route}: {len(notifications)} of {count} notifications arrived "
            f"within {timeout} s"
        )
        return notifications

    def redeliver(self, notification: Notification) -> Notification:
        """The same message delivered again, as SQS does when its consumer's delete was lost (or
        EventBridge, which delivers at least once): made visible, received anew."""
        self.clients.sqs.change_message_visibility(
            QueueUrl=self.queue.url,
            ReceiptHandle=notification.message["ReceiptHandle"],
            VisibilityTimeout=0,
        )
        (again,) = self.collect(1)
        assert again.message["MessageId"] == notification.message["MessageId"]
        return again

    def _delete(self, notifications: Iterable[Notification]) -> None:
        """Delete handled messages, as Lambda does after a successful invocation."""
        entries = [
            {"Id": str(i), "ReceiptHandle": n.message["ReceiptHandle"]}
            for i, n in enumerate(notifications)
        ]
        if entries:
            answer = self.clients.sqs.delete_message_batch(QueueUrl=self.queue.url, Entries=entries)
            assert not answer.get("Failed"), answer["Failed"]

    # --- Lambda's part ------------------------------------------------------------------------

    def event_for(self, notifications: Sequence[Notification]) -> dict[str, Any]:
        """The event the route's invoker builds from ``notifications``."""
        if self.route == "eventbridge":
            (notification,) = notifications  # EventBridge invokes once per event
            return notification.event
        return sqs_event([n.message for n in notifications], self.queue.arn)

    def settle(
        self, notifications: Sequence[Notification], answer: Any, *, delete: bool = True
    ) -> Any:
        """What the invoker does with the handler's ``answer``: delete the handled messages
        (unless ``delete`` is false: a lost delete, for a duplicate delivery). Returns it."""
        if self.route == "eventbridge":
            if delete:
                self._delete(notifications)
            return answer
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        unknown = failed - {n.message["MessageId"] for n in notifications}
        # Lambda fails the whole batch when an identifier is not one of its messages.
        assert not unknown, f"batchItemFailures names messages not in the batch: {unknown}"
        if delete:
            self._delete(n for n in notifications if n.message["MessageId"] not in failed)
        return answer

    def invoke(self, notifications: Sequence[Notification], *, delete: bool = True) -> Any:
        """One invocation with ``notifications``, as the route's invoker makes it, settled as
        it would. Returns the handler's answer."""
        answer = self.handler(self.event_for(notifications), context())
        return self.settle(notifications, answer, delete=delete)

    def deliver(
        self, notifications: Sequence[Notification], *, batch_size: int = SQS_BATCH_SIZE
    ) -> list[Any]:
        """Invocations one after another, in the given order: batches of ``batch_size`` for SQS,
        one event each for EventBridge."""
        size = 1 if self.route == "eventbridge" else batch_size
        return [
            self.invoke(notifications[start : start + size])
            for start in range(0, len(notifications), size)
        ]

    def deliver_concurrently(
        self, notifications: Sequence[Notification], *, workers: int = 8
    ) -> list[Any]:
        """One invocation per notification, ``workers`` at a time, as Lambda scales out on a
        burst: each in a process of its own (a fork of this one, with its environment).

        Processes, not threads: each concurrent Lambda invocation has an execution environment
        of its own, and the handler's Powertools ``Metrics`` is one object per process, not
        made for invocations sharing one (in threads their flushes race: "Must contain at least
        one metric"). Always the real handler: a worker cannot be handed a test's closure.
        """
        assert self.handler is lambda_handler, "concurrent delivery runs the real handler"
        events = [self.event_for([n]) for n in notifications]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            answers = list(pool.map(_invoke_in_worker, events))
        return [self.settle([n], a) for n, a in zip(notifications, answers, strict=True)]

    @staticmethod
    def shuffled(notifications: Sequence[Notification], seed: int) -> list[Notification]:
        """A reproducible out-of-order delivery (the seed is fixed, so a failure reruns)."""
        order = list(notifications)
        random.Random(seed).shuffle(order)
        return order
