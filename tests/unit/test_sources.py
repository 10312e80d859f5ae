"""Event shapes (``handler.events``), on the sample events of ``events/`` and on events built in
the shape AWS sends: each is recognised, each key is decoded, anything else is refused loudly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler.events import (
    InvalidMessage,
    ObjectEvent,
    Shape,
    UnknownEvent,
    object_events,
    s3_work_in_message,
    shape_of,
)
from handler.rules.ordering import Version
from localrun.invoke import put_event
from tests.support import (
    BUCKET,
    batch_event,
    eventbridge_event,
    load_event,
    sns_envelope,
    sqs_event,
)

# Keys that URL-encoding changes: a space (+), a plus (%2B), a percent (%25), non-ASCII.
AWKWARD_KEYS = [
    "market a/market_infos.json",
    "c++/market_infos.json",
    "100%/market_infos.json",
    "märkte/東京/market_infos.json",
    "a+b %2B c/ü +%/market_infos.json",
]


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("put.json", Shape.S3),
        ("put-many.json", Shape.S3),
        ("delete.json", Shape.S3),
        ("delete-marker.json", Shape.S3),
        ("delete-version.json", Shape.S3),
        ("lifecycle-expiration-delete.json", Shape.S3),
        ("lifecycle-expiration-delete-marker.json", Shape.S3),
        ("sqs-s3-delete.json", Shape.SQS),
        ("eventbridge-object-deleted.json", Shape.EVENTBRIDGE),
        ("eventbridge-lifecycle-expiration.json", Shape.EVENTBRIDGE),
        ("test-event.json", Shape.TEST),
        ("sqs-s3.json", Shape.SQS),
        ("sqs-sns-s3.json", Shape.SQS),
        ("eventbridge-object-created.json", Shape.EVENTBRIDGE),
        ("batch-operations-1.0.json", Shape.BATCH),
        ("batch-operations-2.0.json", Shape.BATCH),
    ],
)
def test_each_sample_event_is_recognised(name: str, shape: Shape) -> None:
    assert shape_of(load_event(name)) is shape


def test_sample_events_of_every_shape_name_the_demo_objects() -> None:
    expected = {
        "sqs-s3.json": ["market_a/market_infos.json", "market a/märkte/market_infos.json"],
        "sqs-sns-s3.json": ["market_a/market_infos.json"],
        "eventbridge-object-created.json": ["market a/märkte/market_infos.json"],
        "batch-operations-1.0.json": ["market_a/market_infos.json"],
        "batch-operations-2.0.json": ["market a/märkte/market_infos.json"],
    }
    for name, keys in expected.items():
        events = object_events(load_event(name))
        assert [e.key for e in events] == keys, name
        assert {e.bucket for e in events} == {BUCKET}, name


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({}, "keys []"),
        ({"foo": 1, "bar": 2}, "keys ['bar', 'foo']"),
        ({"source": "aws.ec2", "detail-type": "EC2 Instance State-change"}, "aws.ec2"),
        ({"invocationSchemaVersion": "3.0", "tasks": []}, "'invocationSchemaVersion': '3.0'"),
        ({"Records": [{"eventSource": "aws:sns"}]}, "Records from ['aws:sns']"),
        ({"Records": [{"eventSource": "aws:s3"}, {"eventSource": "aws:sqs"}]}, "aws:s3"),
        ({"Records": ["not a record"]}, "Records from []"),
    ],
)
def test_any_other_shape_is_refused_naming_what_was_received(
    event: dict[str, Any], named: str
) -> None:
    with pytest.raises(UnknownEvent) as caught:
        shape_of(event)
    assert named in str(caught.value)


def _notification(key: str, **fields: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"etag": "e1", "size": 10, "sequencer": "0A"}
    return put_event(BUCKET, key, **(defaults | fields))


def _every_source(key: str) -> dict[str, dict[str, Any]]:
    """One event per shape, each naming ``key`` as its emitter writes it."""
    notification = _notification(key)
    return {
        "s3": notification,
        "sqs": sqs_event(json.dumps(notification)),
        "sqs-sns": sqs_event(json.dumps(sns_envelope(notification))),
        "sqs-eventbridge": sqs_event(json.dumps(eventbridge_event(notification))),
        "eventbridge": eventbridge_event(notification),
        "batch-1.0": batch_event(key, schema="1.0"),
        "batch-2.0": batch_event(key, schema="2.0"),
    }


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_keys_are_decoded_through_every_source(key: str) -> None:
    for source, event in _every_source(key).items():
        encoded = json.dumps(event, ensure_ascii=False)
        if key != key.encode("ascii", "ignore").decode() or " " in key or "+" in key:
            assert json.dumps(key, ensure_ascii=False)[1:-1] not in encoded, source
        assert [e.key for e in object_events(event)] == [key], source


def test_notification_fields_become_an_object_event() -> None:
    event = _notification("m/market_infos.json", version_id="v1", sequencer="00FF")
    [item] = object_events(event)
    assert item == ObjectEvent(
        bucket=BUCKET,
        key="m/market_infos.json",
        version=Version(version_id="v1", etag="e1", sequencer="00FF"),
        created=True,
        request_id="LOCAL",
    )


def test_eventbridge_fields_become_an_object_event() -> None:
    event = eventbridge_event(_notification("m/market_infos.json", version_id="v1"))
    [item] = object_events(event)
    assert item.version == Version(version_id="v1", etag="e1", sequencer="0a")
    assert (item.created, item.request_id) == (True, "N4N7GDK58NMKJ12R")


def test_eventbridge_events_other_than_object_created_are_not_creations() -> None:
    event = eventbridge_event(_notification("m/market_infos.json"))
    event["detail-type"] = "Object Deleted"
    assert shape_of(event) is Shape.EVENTBRIDGE
    assert object_events(event)[0].created is False


def test_batch_tasks_name_a_version_only_where_the_manifest_does() -> None:
    [plain] = object_events(batch_event("m/market_infos.json"))
    [versioned] = object_events(batch_event("m/market_infos.json", version_id="v7", schema="1.0"))
    assert plain.version == Version(None, None, None)
    assert versioned.version == Version("v7", None, None)


def test_notification_deletions_are_not_creations() -> None:
    assert [e.created for e in object_events(load_event("delete.json"))] == [False]


def test_an_s3_test_event_in_a_message_is_no_work() -> None:
    body = json.dumps(load_event("test-event.json"))
    assert s3_work_in_message(body) == []
    assert s3_work_in_message(json.dumps(sns_envelope(load_event("test-event.json")))) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "the message body is not JSON"),
        ("[1, 2]", "the message body is JSON but not an object"),
        ('{"hello": "world"}', "unknown shape: keys ['hello']"),
        (json.dumps({"Type": "Notification", "Message": "{oops"}), "the SNS message is not JSON"),
        (json.dumps(batch_event("k/market_infos.json")), "S3 Batch Operations job inside"),
        (json.dumps(sqs_event("{}")), "SQS messages inside"),
    ],
)
def test_a_message_that_is_not_s3_work_is_invalid(body: str, problem: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        s3_work_in_message(body)
    assert problem in str(caught.value)


def test_a_malformed_notification_record_names_what_is_missing() -> None:
    with pytest.raises(UnknownEvent, match="without 's3'"):
        object_events({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]})


@pytest.mark.parametrize(
    ("name", "keys", "version_ids"),
    [
        ("delete.json", ["market_a/market_infos.json"], [None]),
        (
            "delete-marker.json",
            ["market_a/market_infos.json"],
            ["IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"],
        ),
        (
            "delete-version.json",
            ["market_a/market_infos.json"],
            ["1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF"],
        ),
        ("lifecycle-expiration-delete.json", ["market_a/market_infos.json"], [None]),
        (
            "lifecycle-expiration-delete-marker.json",
            ["market_a/market_infos.json"],
            ["ysUGs8Qx1TeJf7Z2i2dJ4kpE8sVQZb9N"],
        ),
        (
            "sqs-s3-delete.json",
            ["market_a/market_infos.json", "market_a/market_infos.json"],
            [None, "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"],
        ),
        (
            "eventbridge-object-deleted.json",
            ["market a/märkte/market_infos.json"],
            ["1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF"],
        ),
        ("eventbridge-lifecycle-expiration.json", ["market_a/market_infos.json"], [None]),
    ],
)
def test_every_deletion_shape_is_a_deletion(
    name: str, keys: list[str], version_ids: list[str | None]
) -> None:
    items = object_events(load_event(name))
    assert [(i.key, i.version.version_id) for i in items] == list(
        zip(keys, version_ids, strict=True)
    )
    assert all(i.deleted and not i.created for i in items)


def test_creations_and_other_kinds_are_not_deletions() -> None:
    assert not any(i.deleted for i in object_events(load_event("put-many.json")))
    restore = load_event("eventbridge-object-created.json")
    # r4: "Object Restore Completed" is a creation now (tests/test_restores.py).
    restore["detail-type"] = "Object Restore Initiated"
    assert [(i.created, i.deleted) for i in object_events(restore)] == [(False, False)]
