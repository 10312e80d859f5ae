"""What LocalStack's notifications actually deliver, checked before anything is handed to the
handler: the plumbing the scenarios stand on, and the facts about the shapes that the handler's
event parsing must agree with (key encoding, sequencer, ETag, version id).

``captured/`` holds one real message of each route (``tests/infra/capture_events.py``
writes them); a test here checks that the live shapes still have the captured structure, so an
upgrade of LocalStack that changes them is noticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.end_to_end.localstack.lambda_standin import Stack, sqs_event
from tests.infra.localstack_wiring import Clients, Notification, Route

CAPTURED = Path(__file__).resolve().parent / "captured"
KEY = "market a/m%rkte+1/märkte/market_infos.json"
BODY = b'{"products": [{"name": "a", "price": 1.25}]}'
#: The sequencers LocalStack 2026.3 writes into every S3 notification and every EventBridge event:
#: constants, so they cannot order two events of one key.
S3_SEQUENCER = "0055AED6DCD90281E5"
EVENTBRIDGE_SEQUENCER = "0062E99A88DC407460"


def structure(value: Any) -> Any:
    """The shape of a JSON value: its keys, recursively, without its values (which change)."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(item) for item in value[:1]]
    return type(value).__name__


def captured(name: str) -> Any:
    """A message or event recorded from LocalStack by ``capture_events.py``."""
    return json.loads((CAPTURED / name).read_text(encoding="utf-8"))


def two_uploads(stack: Stack) -> list[Notification]:
    """Two uploads of ``KEY``, their notifications in upload order (matched by ETag)."""
    etags = [stack.upload(KEY, body)["ETag"].strip('"') for body in (BODY, BODY + b" ")]
    by_etag = {n.etag: n for n in stack.collect(2)}
    return [by_etag[etag] for etag in etags]


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_s3_to_sqs_message(clients: Clients, versioned: bool) -> None:
    stack = Stack.create(clients, "sqs", versioned=versioned)
    first, second = two_uploads(stack)

    # Configuring the queue sent S3's test event first.
    assert [n.event["Event"] for n in stack.test_events] == ["s3:TestEvent"]
    (record,) = first.event["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == stack.bucket
    # URL-encoded as urllib's quote does it: "%20" for a space, "%2B" for "+", UTF-8 bytes.
    assert first.raw_key == quote(KEY) == "market%20a/m%25rkte%2B1/m%C3%A4rkte/market_infos.json"
    assert first.etag != second.etag
    assert first.sequencer == second.sequencer == S3_SEQUENCER
    if versioned:
        assert first.version_id is not None
        assert second.version_id is not None
        assert first.version_id != second.version_id
    else:
        assert first.version_id is None
        assert "versionId" not in record["s3"]["object"]
    assert structure(first.message) == structure(captured("s3-to-sqs-message.json"))
    if versioned:  # what was captured: an upload to a versioned bucket
        body = json.loads(captured("s3-to-sqs-message.json")["Body"])
        assert structure(first.event) == structure(body)


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_s3_to_eventbridge_event(clients: Clients, versioned: bool) -> None:
    stack = Stack.create(clients, "eventbridge", versioned=versioned)
    first, second = two_uploads(stack)

    assert stack.test_events == []  # EventBridge sends no test event
    event = first.event
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == stack.bucket
    assert event["detail"]["reason"] == "PutObject"
    # LocalStack URL-encodes detail.object.key too, the same way as in S3 notifications.
    assert first.raw_key == quote(KEY)
    assert first.etag != second.etag
    assert first.sequencer == second.sequencer == EVENTBRIDGE_SEQUENCER
    assert (first.version_id is not None) is versioned
    assert ("version-id" in event["detail"]["object"]) is versioned
    if versioned:  # what was captured: an upload to a versioned bucket
        assert structure(event) == structure(captured("eventbridge-event.json"))


def test_s3_to_sns_to_sqs_message(clients: Clients) -> None:
    stack = Stack.create(clients, "sns", versioned=True)
    put = stack.upload(KEY, BODY)
    (notification,) = stack.collect(1)

    envelope = json.loads(notification.message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["Subject"] == "Amazon S3 Notification"
    assert notification.raw_key == quote(KEY)
    assert notification.sequencer == S3_SEQUENCER
    assert notification.version_id == put["VersionId"]
    assert [n.event["Event"] for n in stack.test_events] == ["s3:TestEvent"]
    message = captured("sns-to-sqs-message.json")
    assert structure(notification.message) == structure(message)
    assert structure(envelope) == structure(json.loads(message["Body"]))
    assert structure(notification.event) == structure(
        json.loads(json.loads(message["Body"])["Message"])
    )


@pytest.mark.parametrize("route", ["sqs", "sns"])
def test_the_test_event_is_acknowledged(clients: Clients, route: Route) -> None:
    """Lambda hands S3's ``s3:TestEvent`` to the function like any message: it must not come
    back as a failure (it would be retried until it reached the dead-letter queue)."""
    stack = Stack.create(clients, route, versioned=False)
    stack.upload(KEY, BODY)
    (notification,) = stack.collect(1)
    (test_event,) = stack.test_events

    answer = stack.invoke([test_event, notification])

    assert answer["batchItemFailures"] == []
    assert stack.result(KEY)["status"] == "ok"


def test_the_standin_keeps_failed_messages_and_deletes_the_rest(clients: Clients) -> None:
    """The Lambda stand-in itself: only what ``batchItemFailures`` lists comes back."""
    calls: list[dict[str, Any]] = []

    def fail_the_first(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}

    stack = Stack.create(clients, "sqs", versioned=False, handler=fail_the_first)
    first, second = two_uploads(stack)

    stack.invoke([first, second])
    (record, _) = calls[0]["Records"]
    assert record == sqs_event([first.message, second.message], stack.queue.arn)["Records"][0]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    # The failed message comes back once visible again; the other one was deleted.
    again = stack.redeliver(first)
    assert again.message["Attributes"]["ApproximateReceiveCount"] == "2"
    stack.clients.sqs.change_message_visibility(
        QueueUrl=stack.queue.url, ReceiptHandle=again.message["ReceiptHandle"], VisibilityTimeout=0
    )
    left = stack.clients.sqs.receive_message(
        QueueUrl=stack.queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    assert [m["MessageId"] for m in left if "Records" in m["Body"]] == [first.message["MessageId"]]
