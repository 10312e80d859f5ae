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
and LocalStack's S3 sends the same (tests/end_to_end/localstack).

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

from handler.rules.ordering import Version

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
        S3BatchOperationTask,
    )

S3_TEST_EVENT: Final = "s3:TestEvent"

#: The notification event names (as records spell them, without ``s3:``) that tell of a
#: deletion: ``ObjectRemoved:Delete`` and ``:DeleteMarkerCreated``, and the same two of
#: ``LifecycleExpiration``.
DELETION_EVENTS: Final = ("ObjectRemoved:", "LifecycleExpiration:")

#: A restore of an archived object has completed: a creation of the restored object, whose
#: result said ``unreadable`` until now. Its sequencer, if any, is not used: AWS documents
#: sequencers for PUTs and DELETEs only, and a restore's would not order it after the upload it
#: follows. (EventBridge: ``Object Restore Completed``.)
RESTORE_COMPLETED: Final = "ObjectRestore:Completed"


#: What the messages of ``MalformedEvent`` call each thing.
_RECORD: Final = "an S3 notification record"
_EVENTBRIDGE: Final = "an EventBridge event of S3"
_TASK: Final = "a Batch Operations task"


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


class MalformedEvent(UnknownEvent):
    """Something that claims to be S3 work (an S3 notification record, an EventBridge event of
    S3, a Batch Operations task) but lacks a field the function needs, or has one of the wrong
    type. Kept for an operator (``handler.app``), never silently dropped."""


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


def shape_of(event: object) -> Shape:
    """Recognise ``event``'s shape, or raise ``UnknownEvent`` naming what was received (an event
    that is not a JSON object too: a list, a string, null, a number)."""
    if not isinstance(event, Mapping):
        raise UnknownEvent(
            f"an event that is not a JSON object but {_json_type(event)}: this function takes "
            "S3 notifications, SQS messages, EventBridge events of S3 and Batch Operations jobs"
        )
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


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


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
    """An ``ObjectEvent`` from one record of an S3 notification; ``MalformedEvent`` where a
    field the function needs is missing or of the wrong type.

    The fields are those of Powertools' ``S3EventRecord`` (AWS's names), read here with their
    types checked: the data class returns whatever a forged record holds."""
    name = _text(raw, "eventName", _RECORD)
    s3 = _member(raw, "s3", _RECORD)
    obj = _member(s3, "s3.object", _RECORD)
    restored = name == RESTORE_COMPLETED
    response = raw.get("responseElements") or {}
    if not isinstance(response, Mapping):
        raise MalformedEvent(f"{_RECORD} with {_json_type(response)} as 'responseElements'")
    return ObjectEvent(
        bucket=_text(_member(s3, "s3.bucket", _RECORD), "s3.bucket.name", _RECORD),
        key=unquote_plus(_text(obj, "s3.object.key", _RECORD)),
        version=Version(
            version_id=_optional_text(obj, "s3.object.versionId", _RECORD),
            etag=_optional_text(obj, "s3.object.eTag", _RECORD),
            sequencer=None if restored else _optional_text(obj, "s3.object.sequencer", _RECORD),
        ),
        created=name.startswith("ObjectCreated:") or restored,
        deleted=name.startswith(DELETION_EVENTS),
        request_id=_optional_text(response, "responseElements.x-amz-request-id", _RECORD),
    )


def from_eventbridge(event: Mapping[str, Any]) -> ObjectEvent:
    """An ``ObjectEvent`` from an EventBridge event of S3 (``source: aws.s3``); ``MalformedEvent``
    where a field the function needs is missing or of the wrong type.

    ``Object Created`` and ``Object Restore Completed`` events create; ``Object Deleted`` ones (a
    ``deletion-type`` of ``Permanently Deleted`` or ``Delete Marker Created``, a ``reason`` of
    ``DeleteObject`` or ``Lifecycle Expiration``: the key's state decides, not these) delete;
    other detail types come back as neither, to be skipped. Field names as in Powertools'
    ``S3EventBridgeNotificationEvent``.
    """
    detail_type = _text(event, "detail-type", _EVENTBRIDGE)
    detail = _member(event, "detail", _EVENTBRIDGE)
    obj = _member(detail, "detail.object", _EVENTBRIDGE)
    restored = detail_type == "Object Restore Completed"
    return ObjectEvent(
        bucket=_text(
            _member(detail, "detail.bucket", _EVENTBRIDGE), "detail.bucket.name", _EVENTBRIDGE
        ),
        # AWS encodes the key as in notifications (Powertools' data class decodes it too).
        key=unquote_plus(_text(obj, "detail.object.key", _EVENTBRIDGE)),
        version=Version(
            version_id=_optional_text(obj, "detail.object.version-id", _EVENTBRIDGE),
            etag=_optional_text(obj, "detail.object.etag", _EVENTBRIDGE),
            sequencer=None
            if restored
            else _optional_text(obj, "detail.object.sequencer", _EVENTBRIDGE),
        ),
        created=detail_type == "Object Created" or restored,
        deleted=detail_type == "Object Deleted",
        request_id=_optional_text(detail, "detail.request-id", _EVENTBRIDGE),
    )


def from_batch_task(task: S3BatchOperationTask) -> ObjectEvent:
    """An ``ObjectEvent`` from one task of an S3 Batch Operations job (schema 1.0 names the
    bucket by ARN, 2.0 by name: Powertools' ``s3_bucket`` takes the name out of the ARN). A task
    names a version only where the manifest lists one, and never an ETag or a sequencer: the
    key's current object decides (``ordering``). ``MalformedEvent`` for a task without its
    fields."""
    _text(task, "s3BucketArn" if "s3BucketArn" in task else "s3Bucket", _TASK)
    _text(task, "s3Key", _TASK)
    return ObjectEvent(
        bucket=task.s3_bucket,
        key=task.s3_key,  # decoded by Powertools (unquote_plus): manifests encode keys
        version=Version(
            version_id=_optional_text(task, "s3VersionId", _TASK), etag=None, sequencer=None
        ),
    )


def batch_task_id(task: Mapping[str, Any]) -> str | None:
    """A Batch Operations task's id, or ``None`` where it has none (it cannot be answered)."""
    task_id = task.get("taskId") if isinstance(task, Mapping) else None
    return task_id if isinstance(task_id, str) and task_id else None


def _member(parent: Mapping[str, Any], path: str, what: str) -> Mapping[str, Any]:
    """The object at ``path`` (dotted, from ``what``'s top) in ``parent``, its last member."""
    value = parent.get(path.rpartition(".")[2])
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{what} {_without(value)} {path!r}")
    return value


def _text(parent: Mapping[str, Any], path: str, what: str) -> str:
    """A non-empty string field."""
    value = parent.get(path.rpartition(".")[2])
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{what} {_without(value)} {path!r}")
    return value


def _optional_text(parent: Mapping[str, Any], path: str, what: str) -> str | None:
    """A string field that may be absent, null or empty (``None`` then)."""
    value = parent.get(path.rpartition(".")[2])
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{what} with a non-string {path!r}")
    return value


def _without(value: object) -> str:
    return "without" if value is None else f"with {_json_type(value)} as"


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
