"""The world as it is, on LocalStack (``docs/behaviour.md``, "The world as it is"): LocalStack's
own notifications, and what an attacker with SendMessage on the queue can add to them, through
every route (S3 -> SQS, S3 -> SNS -> SQS, EventBridge), versioned and unversioned.

- an event of a bucket that is not the deployment's (``SOURCE_BUCKETS``) is refused, never
  retried, and the deployment's own is totalled;
- a forged message whose sequencer claims to be later than everything cannot freeze the key:
  LocalStack's next genuine notification totals the new upload;
- malformed S3 work is copied at once to the dead-letter queue (``MALFORMED_QUEUE_URL``, here a
  LocalStack queue), never handed back for redelivery;
- an archived input (storage class ``GLACIER``, which LocalStack's S3 refuses to GET) gets an
  ``unreadable`` result at once, and is totalled once restored.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from handler.app import lambda_handler
from tests.end_to_end.localstack.lambda_standin import Stack, context, sqs_event
from tests.infra.localstack_wiring import Clients, Notification, create_queue

KEY = "shop/market_infos.json"
MARKET = b'{"products": [{"price": 150}, {"price": 250}]}'
UPDATED = b'{"products": [{"price": 1.5}]}'


def record_statuses(stack: Stack, answers: list[Any]) -> list[tuple[str, str | None]]:
    """Each record's status and reason where the route's answer carries them (EventBridge);
    SQS answers must name no failure (nothing handed back for redelivery)."""
    if stack.route == "eventbridge":
        return [(r["status"], r.get("reason")) for a in answers for r in a["records"]]
    assert all(answer == {"batchItemFailures": []} for answer in answers), answers
    return []


def send_forged(stack: Stack, real: Notification, change: Callable[[dict[str, Any]], None]) -> None:
    """What someone allowed to send to the queue can do: a copy of a real notification, changed
    by ``change`` (on the S3 record's ``object``, or EventBridge's ``detail.object``), sent as
    the route would carry it."""
    event = copy.deepcopy(real.event)
    if stack.route == "eventbridge":
        change(event["detail"]["object"])
    else:
        change(event["Records"][0]["s3"]["object"])
    body = json.dumps(event)
    if stack.route == "sns":
        body = json.dumps({"Type": "Notification", "Message": body})
    stack.clients.sqs.send_message(QueueUrl=stack.queue.url, MessageBody=body)


def test_a_bucket_not_the_deployments_is_refused_and_its_own_is_totalled(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_BUCKETS", "the-deployments-bucket")
    stack.upload(KEY, MARKET)
    answers = stack.deliver(stack.collect(1))

    assert record_statuses(stack, answers) in ([], [("skipped", "NotOwnBucket")])
    assert not stack.has_result(KEY)  # nothing read, nothing written, nothing retried

    monkeypatch.setenv("SOURCE_BUCKETS", f"the-deployments-bucket,{stack.bucket}")
    stack.upload(KEY, MARKET)
    stack.deliver(stack.collect(1))
    assert stack.result(KEY)["total"] == 400


def test_a_forged_sequencer_does_not_freeze_the_key(stack: Stack) -> None:
    stack.upload(KEY, MARKET)
    (real,) = stack.collect(1)
    stack.deliver([real])

    def forge(obj: dict[str, Any]) -> None:
        # Later than any sequencer S3 (or LocalStack's constant one) sends; no version, no ETag.
        obj["sequencer"] = "F"
        for name in ("eTag", "etag", "versionId", "version-id"):
            obj.pop(name, None)

    send_forged(stack, real, forge)
    stack.deliver(stack.collect(1))  # accepted: it names the key's current object

    stack.upload(KEY, UPDATED)
    stack.deliver(stack.collect(1))  # LocalStack's genuine notification of the new upload

    result = stack.result(KEY)
    assert (result["status"], result["total"]) == ("ok", Decimal("1.5"))


def test_malformed_s3_work_is_kept_in_the_dead_letter_queue_at_once(
    stack: Stack, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_letters = create_queue(clients, f"{stack.bucket}-dlq")
    monkeypatch.setenv("MALFORMED_QUEUE_URL", dead_letters.url)
    stack.upload(KEY, MARKET)
    (real,) = stack.collect(1)
    stack.deliver([real])  # the genuine one, handled

    def malform(obj: dict[str, Any]) -> None:
        del obj["key"]

    send_forged(stack, real, malform)
    # Received raw: the suite's own parser would choke on it, as the function must not.
    deadline = time.monotonic() + 30
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        messages = clients.sqs.receive_message(
            QueueUrl=stack.queue.url, WaitTimeSeconds=2, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
    (message,) = messages
    body = json.loads(message["Body"])
    event = body if stack.route == "eventbridge" else sqs_event([message], stack.queue.arn)

    answer = lambda_handler(event, context())

    if stack.route == "eventbridge":
        assert answer == {"records": []}  # kept and answered, not raised for Lambda's retries
    else:
        assert answer == {"batchItemFailures": []}  # no pointless redeliveries
    kept = clients.sqs.receive_message(
        QueueUrl=dead_letters.url, WaitTimeSeconds=5, MessageAttributeNames=["All"]
    )["Messages"]
    assert len(kept) == 1
    sent = json.dumps(body) if stack.route == "eventbridge" else message["Body"]
    assert kept[0]["Body"] == sent
    assert "key" in kept[0]["MessageAttributes"]["market-totals-problem"]["StringValue"]
    assert stack.result(KEY)["total"] == 400  # the genuine result untouched


def test_an_archived_input_is_unreadable_at_once_then_totalled_once_restored(
    stack: Stack,
) -> None:
    stack.clients.s3.put_object(Bucket=stack.bucket, Key=KEY, Body=MARKET, StorageClass="GLACIER")
    (created,) = stack.collect(1)
    answers = stack.invoke([created], delete=False)  # its delete lost: it comes again

    assert record_statuses(stack, [answers]) in ([], [("unreadable", None)])
    result = stack.result(KEY)
    assert (result["status"], result["error"]["code"]) == ("unreadable", "ObjectArchived")

    stack.clients.s3.restore_object(Bucket=stack.bucket, Key=KEY, RestoreRequest={"Days": 1})
    # LocalStack restores at once; the notification of the object, delivered again, totals it
    # (an unreadable result reflects no version, so it is no duplicate).
    stack.deliver([stack.redeliver(created)])
    result = stack.result(KEY)
    assert (result["status"], result["total"]) == ("ok", 400)
