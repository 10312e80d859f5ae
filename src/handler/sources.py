"""The shapes in which S3 work reaches the function, turned into one thing: ``ObjectEvent``.

S3 work arrives as direct S3 notifications, as SQS messages (S3 -> SQS, S3 -> SNS -> SQS, and
EventBridge -> SQS), as EventBridge events, and as S3 Batch Operations tasks. Each names a bucket,
a key and, where the emitter knows them, a version id, an ETag and a sequencer. This module reads
those fields (through Powertools' event data classes, the reference for each source's field names)
and nothing else: no S3 access, no Lambda context, so each shape is tested on sample events alone.

Keys: S3 notifications, EventBridge events from S3 and Batch Operations manifests all carry the key
URL-encoded (``market+a/m%C3%A4rkte/market_infos.json``), so every key is decoded with
``unquote_plus``. For EventBridge this is what AWS sends (the key of an "Object Created" event is
encoded as in notifications; Powertools' ``S3EventBridgeNotificationObject.key`` decodes it too),
and LocalStack's S3 sends the same (tests/localstack).

The data classes are imported when an event needs them, not with this module: importing any of
them imports every one of Powertools' event data classes (its package does), a cost the cold
start of every invocation would pay (``docs/benchmarks.md``, "Cold start").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from handler.ordering import Version

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
        S3BatchOperationTask,
    )
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

S3_TEST_EVENT: Final = "s3:TestEvent"

#: The notification event names (as records spell them, without ``s3:``) that tell of a
#: deletion: ``ObjectRemoved:Delete`` and ``:DeleteMarkerCreated``, and the same two of
#: ``LifecycleExpiration``.
DELETION_EVENTS: Final = ("ObjectRemoved:", "LifecycleExpiration:")


class Shape(Enum):
    """The event shapes the handler answers, each in its invoker's format."""

    S3 = "S3 event notification"
    SQS = "SQS messages"
    EVENTBRIDGE = "EventBridge event"
    BATCH = "S3 Batch Operations job"
    TEST = "S3 test event"


class UnknownEvent(ValueError):
    """The function was invoked with an event it does not know: a configuration error (a wrong
    trigger, a wrong target). Raised, never a silent no-op, with what was received."""


class InvalidMessage(ValueError):
    """An SQS message whose body is not S3 work: answered (logged), not retried, since a retry
    would read the same body."""


@dataclass(frozen=True)
class ObjectEvent:
    """One object the function is asked to total, whatever the emitter."""

    bucket: str
    key: str  # decoded
    version: Version
    #: ``False`` for events of other kinds (deletions, other EventBridge detail types).
    created: bool = True
    #: ``True`` for a deletion: ``ObjectRemoved:*``, ``LifecycleExpiration:*``, or EventBridge's
    #: ``Object Deleted``. Its ``version`` names the version deleted or the delete marker made.
    deleted: bool = False
    #: S3's request id where the emitter sends one: the logs' correlation id.
    request_id: str | None = None


def shape_of(event: Mapping[str, Any]) -> Shape:
    """Recognise ``event``'s shape, or raise ``UnknownEvent`` naming what was received."""
    records = event.get("Records")
    if isinstance(records, list):
        # SNS spells it EventSource: name it too, so its message says what arrived.
        sources = {
            r.get("eventSource") or r.get("EventSource") for r in records if isinstance(r, Mapping)
        }
        if not records:
            return Shape.TEST  # nothing to do; S3 never sends it, but it harms no one
        if all(isinstance(r, Mapping) for r in records):
            if sources == {"aws:s3"}:
                return Shape.S3
            if sources == {"aws:sqs"}:
                return Shape.SQS
        raise UnknownEvent(
            f"an event with Records from {sorted(map(str, sources))}: this function takes S3 "
            "notifications (aws:s3) or SQS messages (aws:sqs); for SNS fan-out, subscribe an "
            "SQS queue to the topic and trigger the function from the queue"
        )
    if event.get("Event") == S3_TEST_EVENT:
        return Shape.TEST
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return Shape.EVENTBRIDGE
    if event.get("invocationSchemaVersion") in ("1.0", "2.0") and isinstance(
        event.get("tasks"), list
    ):
        return Shape.BATCH
    raise UnknownEvent(f"an event of unknown shape: {_describe_shape(event)}")


def _describe_shape(event: Mapping[str, Any]) -> str:
    """What an unknown event looks like, without its contents: top-level keys and the few
    fields that tell sources apart."""
    keys = sorted(map(str, event))[:12]
    hints = {
        name: event[name]
        for name in ("source", "detail-type", "invocationSchemaVersion", "eventSource")
        if isinstance(event.get(name), str)
    }
    return f"keys {keys}" + (f", {hints}" if hints else "")


def from_s3_record(raw: Mapping[str, Any]) -> ObjectEvent:
    """An ``ObjectEvent`` from one record of an S3 notification."""
    from aws_lambda_powertools.utilities.data_classes.s3_event import (  # noqa: PLC0415
        S3EventRecord,
    )

    try:
        return _from_s3_record(S3EventRecord(dict(raw)))
    except (KeyError, TypeError, AttributeError) as error:
        raise UnknownEvent(f"an S3 notification record without {error}") from None


def _from_s3_record(record: S3EventRecord) -> ObjectEvent:
    obj = record.s3.get_object
    return ObjectEvent(
        bucket=record.s3.bucket.name,
        key=unquote_plus(obj.key),  # Powertools gives notification keys raw
        version=Version(
            version_id=obj.version_id or None,
            etag=obj.etag or None,
            sequencer=obj.get("sequencer") or None,
        ),
        created=record.event_name.startswith("ObjectCreated:"),
        deleted=record.event_name.startswith(DELETION_EVENTS),
        request_id=(record.get("responseElements") or {}).get("x-amz-request-id"),
    )


def from_eventbridge(event: Mapping[str, Any]) -> ObjectEvent:
    """An ``ObjectEvent`` from an EventBridge event of S3 (``source: aws.s3``).

    ``Object Created`` events create; ``Object Deleted`` ones (a ``deletion-type`` of
    ``Permanently Deleted`` or ``Delete Marker Created``, a ``reason`` of ``DeleteObject`` or
    ``Lifecycle Expiration``: the key's state decides, not these) delete; other detail types
    (``Object Restore Completed``, ...) come back as neither, to be skipped.
    """
    from aws_lambda_powertools.utilities.data_classes.s3_event import (  # noqa: PLC0415
        S3EventBridgeNotificationEvent,
    )

    wrapped = S3EventBridgeNotificationEvent(dict(event))
    detail = wrapped.detail
    obj = detail.object
    return ObjectEvent(
        bucket=detail.bucket.name,
        key=obj.key,  # decoded by Powertools (unquote_plus): AWS encodes it as in notifications
        version=Version(
            version_id=obj.get("version-id") or None,
            etag=obj.get("etag") or None,
            sequencer=obj.get("sequencer") or None,
        ),
        created=wrapped.detail_type == "Object Created",
        deleted=wrapped.detail_type == "Object Deleted",
        request_id=detail.get("request-id"),
    )


def from_batch_task(task: S3BatchOperationTask) -> ObjectEvent:
    """An ``ObjectEvent`` from one task of an S3 Batch Operations job (schema 1.0 names the
    bucket by ARN, 2.0 by name). A task names a version only where the manifest lists one, and
    never an ETag or a sequencer: the key's current object decides (``ordering``)."""
    return ObjectEvent(
        bucket=task.s3_bucket,
        key=task.s3_key,  # decoded by Powertools (unquote_plus): manifests encode keys
        version=Version(version_id=task.s3_version_id or None, etag=None, sequencer=None),
    )


def s3_work_in_message(body: str) -> list[ObjectEvent]:
    """The S3 work an SQS message carries: the records of an S3 notification, directly or in an
    SNS envelope (``Message``), or an EventBridge event of S3; none for an ``s3:TestEvent``.

    Raises ``InvalidMessage`` for any other body.
    """
    document = _json_object(body, "the message body")
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        # S3 -> SNS -> SQS without raw message delivery: the notification is SNS's Message.
        document = _json_object(document["Message"], "the SNS message")
    try:
        shape = shape_of(document)
    except UnknownEvent as error:
        raise InvalidMessage(str(error)) from None
    if shape is Shape.TEST:
        return []
    if shape is Shape.S3:
        return [from_s3_record(raw) for raw in document["Records"]]
    if shape is Shape.EVENTBRIDGE:
        return [from_eventbridge(document)]
    raise InvalidMessage(f"{shape.value} inside an SQS message")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        raise InvalidMessage(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidMessage(f"{what} is JSON but not an object")
    return document


def object_events(event: Mapping[str, Any]) -> list[ObjectEvent]:
    """Every object event that ``event`` carries, whatever its shape (SQS bodies included):
    what a local driver needs to seed the objects an event names. Raises ``UnknownEvent`` or
    ``InvalidMessage`` for what the handler would not take."""
    shape = shape_of(event)
    if shape is Shape.S3:
        return [from_s3_record(raw) for raw in event["Records"]]
    if shape is Shape.SQS:
        return [item for raw in event["Records"] for item in s3_work_in_message(raw["body"])]
    if shape is Shape.EVENTBRIDGE:
        return [from_eventbridge(event)]
    if shape is Shape.BATCH:
        from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (  # noqa: PLC0415
            S3BatchOperationEvent,
        )

        return [from_batch_task(task) for task in S3BatchOperationEvent(dict(event)).tasks]
    return []
