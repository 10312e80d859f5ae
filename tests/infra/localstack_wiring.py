"""Wire a bucket's notifications to an SQS queue through LocalStack's own services, and read back
what arrives.

Three routes, each ending in a queue the tests (or ``capture_events.py``) read:

- ``sqs``: S3 -> SQS (a ``QueueConfiguration``). Lambda reads this queue itself; the body is the
  S3 notification.
- ``sns``: S3 -> SNS -> SQS. The body is SNS's envelope; its ``Message`` is the S3 notification.
- ``eventbridge``: S3 -> EventBridge (``EventBridgeConfiguration``) -> a rule on the default bus
  -> SQS. In a deployment the rule's target is the function, invoked with the event itself; the
  queue only lets a test hold the event and choose when (and in which order) to invoke.

The rule and filters are the template's (``ObjectCreatedRule``, the suffix filter), so what is
tested is what is deployed. Queue policies grant what AWS would require; LocalStack does not
check them, but a copy of this wiring against AWS would need them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import boto3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import EventType
    from mypy_boto3_s3.type_defs import NotificationConfigurationFilterTypeDef

Route = Literal["sqs", "sns", "eventbridge"]
ROUTES: Final[tuple[Route, ...]] = ("sqs", "sns", "eventbridge")
INPUT_SUFFIX: Final = "market_infos.json"
REGION: Final = "us-east-1"
FAKE_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: Long enough that a received message stays hidden for the whole test that holds it: the tests,
#: not SQS's timer, decide when a message is delivered again.
VISIBILITY_TIMEOUT: Final = 300
#: What S3 puts in an ``s3:TestEvent`` (sent when a queue or topic is configured).
TEST_EVENT: Final = "s3:TestEvent"


@dataclass(frozen=True)
class Clients:
    """boto3 clients of LocalStack's services, with fake credentials.

    Only S3 has stubs in the project's virtualenv; the others are ``Any`` to mypy.
    """

    s3: S3Client
    sqs: Any
    sns: Any
    events: Any

    @classmethod
    def for_endpoint(cls, endpoint: str) -> Clients:
        """Clients bound to ``endpoint`` explicitly, whatever the environment says."""

        def client(service: str) -> Any:
            return boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=endpoint,
                region_name=REGION,
                **FAKE_CREDENTIALS,
            )

        return cls(s3=client("s3"), sqs=client("sqs"), sns=client("sns"), events=client("events"))


@dataclass(frozen=True)
class Queue:
    """A queue as the two sides name it: SQS calls take the URL, notifications the ARN."""

    url: str
    arn: str


@dataclass(frozen=True)
class Notification:
    """One received SQS message and what it says about one object.

    ``event`` is what the function gets: the S3 notification (``sqs``; ``sns`` after unwrapping
    the envelope, for looking only) or the EventBridge event (``eventbridge``). ``raw_key`` is the
    key as the event carries it (URL-encoded); ``etag`` has no quotes. ``is_test_event`` marks
    S3's ``s3:TestEvent``, which names no object.
    """

    route: Route
    message: dict[str, Any]
    event: dict[str, Any]
    raw_key: str | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    is_test_event: bool


def create_bucket(clients: Clients, bucket: str, *, versioned: bool) -> None:
    """A bucket, versioned or not: events name a version id only in a versioned one, and the
    handler must read exactly the object an event names in both."""
    clients.s3.create_bucket(Bucket=bucket)
    if versioned:
        clients.s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )


def create_queue(clients: Clients, name: str) -> Queue:
    """A standard queue whose messages stay hidden, once received, for ``VISIBILITY_TIMEOUT``."""
    url: str = clients.sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)}
    )["QueueUrl"]
    arn: str = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return Queue(url, arn)


def allow_sender(clients: Clients, queue: Queue, principal: str, source_arn: str) -> None:
    """The queue policy AWS requires before ``principal`` (a service) may send to ``queue``."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }
    clients.sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})


#: The template's event types: creations, deletions and lifecycle expiries of input keys.
EVENTS: Final[list[EventType]] = [
    "s3:ObjectCreated:*",
    "s3:ObjectRemoved:*",
    "s3:LifecycleExpiration:*",
]


def _suffix_filter() -> NotificationConfigurationFilterTypeDef:
    """The template's filter: only input keys notify (results must never trigger a run)."""
    return {"Key": {"FilterRules": [{"Name": "suffix", "Value": INPUT_SUFFIX}]}}


def wire(clients: Clients, route: Route, bucket: str) -> Queue:
    """Route ``bucket``'s notifications of input keys (created or deleted) to a new queue."""
    queue = create_queue(clients, f"{bucket}-{route}")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if route == "sqs":
        allow_sender(clients, queue, "s3.amazonaws.com", bucket_arn)
        clients.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue.arn,
                        "Events": EVENTS,
                        "Filter": _suffix_filter(),
                    }
                ]
            },
        )
    elif route == "sns":
        topic: str = clients.sns.create_topic(Name=f"{bucket}-topic")["TopicArn"]
        allow_sender(clients, queue, "sns.amazonaws.com", topic)
        clients.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue.arn)
        clients.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "TopicConfigurations": [
                    {
                        "TopicArn": topic,
                        "Events": EVENTS,
                        "Filter": _suffix_filter(),
                    }
                ]
            },
        )
    else:
        rule = f"{bucket}-object-created"
        pattern = {
            "source": ["aws.s3"],
            "detail-type": ["Object Created", "Object Deleted"],
            "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"suffix": INPUT_SUFFIX}]}},
        }
        rule_arn: str = clients.events.put_rule(Name=rule, EventPattern=json.dumps(pattern))[
            "RuleArn"
        ]
        allow_sender(clients, queue, "events.amazonaws.com", rule_arn)
        clients.events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue.arn}])
        clients.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    return queue


def parse(route: Route, message: dict[str, Any]) -> Notification:
    """What ``message`` (as ``receive_message`` returned it) says, for the route it came by."""
    body: dict[str, Any] = json.loads(message["Body"])
    if route == "eventbridge":
        obj = body["detail"]["object"]
        return Notification(
            route,
            message,
            body,
            raw_key=obj.get("key"),
            etag=obj.get("etag"),
            version_id=obj.get("version-id"),
            sequencer=obj.get("sequencer"),
            is_test_event=False,
        )
    s3_event: dict[str, Any] = json.loads(body["Message"]) if route == "sns" else body
    if s3_event.get("Event") == TEST_EVENT:
        return Notification(route, message, s3_event, None, None, None, None, is_test_event=True)
    (record,) = s3_event["Records"]  # S3 sends one record per notification
    obj = record["s3"]["object"]
    return Notification(
        route,
        message,
        s3_event,
        raw_key=obj.get("key"),
        etag=obj.get("eTag"),
        version_id=obj.get("versionId"),
        sequencer=obj.get("sequencer"),
        is_test_event=False,
    )


def receive(
    clients: Clients, route: Route, queue: Queue, count: int, *, timeout: float = 30.0
) -> list[Notification]:
    """Receive until ``count`` object notifications (test events not counted, but returned too)
    have arrived, or ``timeout`` seconds have passed: whatever arrived by then, in arrival order.

    The messages stay in the queue, hidden for ``VISIBILITY_TIMEOUT``: deleting them is the
    consumer's part (Lambda's, played by the tests), once it has handled them.
    """
    deadline = time.monotonic() + timeout
    received: list[Notification] = []
    while sum(not n.is_test_event for n in received) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # What Lambda's SQS poller asks for: every system and message attribute.
        answer = clients.sqs.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=max(1, min(5, int(left))),
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        received.extend(parse(route, message) for message in answer.get("Messages", []))
    return received
