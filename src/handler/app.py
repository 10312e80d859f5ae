"""The Lambda entry point: recognises the event's shape (``handler.events``), hands each object
event to its flow (``handler.flows``: created or deleted), and answers in the format its invoker
expects (``docs/behaviour.md``, "Input").

| shape                        | answer                                                        |
|------------------------------|---------------------------------------------------------------|
| S3 notification, EventBridge | ``{"records": [...]}``; transient failures raised (retried)    |
|   (creations and deletions)  |                                                               |
| SQS messages                 | ``{"batchItemFailures": [...]}``: the messages to retry       |
| S3 Batch Operations          | AWS's batch response, one result per task                      |
| ``s3:TestEvent``             | ``{"records": []}``                                            |

Any other shape (an event that is not a JSON object too) is a configuration error (a wrong
trigger), raised with what was received. Work that claims to be S3's but is malformed is logged
at ERROR, counted (``MessagesMalformed``) and kept for an operator (``handler.quarantine``).

Work per invocation is bounded: a record is started only while more than ``TIME_MARGIN_MS`` of
the invocation remains; what is left is handed back (SQS: the untouched messages in the partial
batch response; Batch Operations: ``TemporaryFailure``; a direct event: a raise once the
finished records are written, so Lambda retries it and they are cheap duplicates).

What only one shape needs is imported when that shape arrives, not at the cold start: Powertools'
batch utilities (they pull in ``asyncio`` and every event data class) for SQS, the Batch
Operations data classes for Batch Operations (``docs/benchmarks.md``, "Cold start").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from aws_lambda_powertools.metrics import MetricUnit

from handler import events, quarantine, storage
from handler.events import MalformedEvent, ObjectEvent, Shape
from handler.flows.created import process
from handler.flows.deleted import follow_deletion
from handler.observability import logger, metrics, traced
from handler.outcomes import Outcome, Reason, Status
from handler.rules.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
        S3BatchOperationResponseRecord,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client

#: A record is started only while more of the invocation's time than this remains: one S3
#: request may stall up to its connect and read timeouts (``storage.CLIENT_CONFIG``: 5 + 20 s)
#: before botocore gives up, and 5 s more write what was finished and answer. With the
#: template's 120 s timeout, records are taken during the first 90 s.
TIME_MARGIN_MS: Final = 30_000


class RecordsFailed(RuntimeError):
    """Some records failed for a reason a retry may cure (throttling, 5xx, timeouts, access
    denied, configuration), or were not started for want of time. Raised after every record
    that could be was tried, so Lambda retries the event."""


class OutOfTime(RuntimeError):
    """Work handed back unstarted: too little of the invocation's time remained."""


@dataclass(frozen=True)
class Deadline:
    """Whether another record may start: ``remaining_ms`` is the context's
    ``get_remaining_time_in_millis``."""

    remaining_ms: Callable[[], int]

    def allows_another(self) -> bool:
        return self.remaining_ms() > TIME_MARGIN_MS


@dataclass
class Progress:
    """What became of a list of object events: those answered, those that failed (a retry may
    cure them), and how many were not started for want of time."""

    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    deferred: int = 0

    def problem(self, total: int) -> str | None:
        """What to raise with, or ``None`` where every record was answered."""
        parts = []
        if self.failures:
            parts.append(
                f"{len(self.failures)} of {total} record(s) failed: " + "; ".join(self.failures)
            )
        if self.deferred:
            parts.append(
                f"{self.deferred} of {total} record(s) not started: the invocation's time ran "
                "short; they are retried"
            )
        return "; ".join(parts) or None


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    shape = events.shape_of(event)
    logger.append_keys(event_shape=shape.name)
    if shape is Shape.TEST:
        # Counted, so that the invocation publishes a metric (and says it was only a test).
        metrics.add_metric(name="TestEvents", unit=MetricUnit.Count, value=1)
        return {"records": []}
    # Read on every invocation (cheap), so a changed environment always applies; a bad setting
    # raises before anything is read, and the event is retried once it is fixed.
    settings = Settings.from_env()
    client = storage.client_for(settings.expected_bucket_owner)
    deadline = Deadline(context.get_remaining_time_in_millis)
    if shape is Shape.SQS:
        return _answer_sqs(event, context, client, settings, deadline)
    if shape is Shape.BATCH:
        return _answer_batch(event, client, settings, deadline)
    return _answer_direct(event, shape, client, settings, deadline)


def _answer_direct(
    event: dict[str, Any], shape: Shape, client: S3Client, settings: Settings, deadline: Deadline
) -> dict[str, Any]:
    """An S3 notification or an EventBridge event: its object events, in order. A malformed
    record is kept (``MALFORMED_QUEUE_URL``) or, where it cannot be, makes the invocation raise
    once the others are done, so Lambda's retries and on-failure destination keep it."""
    raws: list[Any] = list(event["Records"]) if shape is Shape.S3 else [event]
    work: list[ObjectEvent] = []
    unkept: list[str] = []
    for index, raw in enumerate(raws):
        try:
            work.append(
                events.from_s3_record(raw) if shape is Shape.S3 else events.from_eventbridge(raw)
            )
        except MalformedEvent as error:
            origin = f"Records[{index}]" if shape is Shape.S3 else str(event.get("id"))
            body = json.dumps({"Records": [raw]} if shape is Shape.S3 else raw)
            if not _keep_malformed(settings, body, error, origin):
                unkept.append(f"{origin}: {error}")
    progress = _process_all(client, work, settings, deadline)
    problem = progress.problem(len(work))
    if unkept:
        message = f"{len(unkept)} malformed record(s): " + "; ".join(unkept)
        if problem is None:
            raise MalformedEvent(message)
        problem = f"{problem}; {message}"
    if problem is not None:
        raise RecordsFailed(problem)
    return {"records": [outcome.summary() for outcome in progress.outcomes]}


def _process_all(
    client: S3Client, work: list[ObjectEvent], settings: Settings, deadline: Deadline
) -> Progress:
    """Process the object events in order while the deadline allows; every failure is caught
    (and listed) so that each record is tried."""
    progress = Progress()
    for index, item in enumerate(work):
        if not deadline.allows_another():
            progress.deferred = len(work) - index
            _report_deferred(progress.deferred, "record(s)")
            break
        try:
            progress.outcomes.append(_process_one(client, item, settings))
        except Exception as exc:  # noqa: BLE001 - every record is tried before raising
            progress.failures.append(f"{item.bucket}/{item.key}: {type(exc).__name__}: {exc}")
    return progress


def _process_one(client: S3Client, item: ObjectEvent, settings: Settings) -> Outcome:
    """``process`` (a deletion: ``follow_deletion``) with the logging and metrics every entry
    point shares."""
    logger.set_correlation_id(item.request_id)
    try:
        outcome = (follow_deletion if item.deleted else process)(client, item, settings)
    except Exception:
        logger.exception(
            "record failed; it will be retried", extra={"bucket": item.bucket, "key": item.key}
        )
        metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
        raise
    _observe(outcome)
    return outcome


def _answer_sqs(
    event: dict[str, Any],
    context: LambdaContext,
    client: S3Client,
    settings: Settings,
    deadline: Deadline,
) -> dict[str, Any]:
    """A partial batch response: exactly the messages that had a transient failure, or were not
    (wholly) done in time, are listed (Lambda returns them to the queue); the others are
    deleted. A message is the unit: one whose records were only partly done comes back whole,
    its finished records then duplicates. Powertools does the bookkeeping;
    ``raise_on_entire_batch_failure=False`` keeps the answer a list even when every message
    failed, so the response always names them."""
    # SQS only (module doc).
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    def handle(record: SQSRecord) -> None:
        if not deadline.allows_another():
            _report_deferred(1, "message(s)", message_id=record.message_id)
            raise OutOfTime("not started: the invocation's time ran short")
        try:
            work = events.s3_work_in_message(record.body)
        except events.InvalidMessage as error:
            # A retry would read the same body: answered here (logged, counted), not retried.
            logger.error(
                "message is not S3 work; dropped",
                extra={"message_id": record.message_id, "problem": str(error)},
            )
            metrics.add_metric(name="MessagesInvalid", unit=MetricUnit.Count, value=1)
            return
        except MalformedEvent as error:
            if _keep_malformed(settings, record.body, error, record.message_id):
                return  # its copy is in the DLQ; the original is answered
            raise  # a batch item failure: the queue's redrive policy keeps it
        progress = _process_all(client, work, settings, deadline)
        if problem := progress.problem(len(work)):
            raise RecordsFailed(problem)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    return dict(response)


def _answer_batch(
    event: dict[str, Any], client: S3Client, settings: Settings, deadline: Deadline
) -> dict[str, Any]:
    """S3 Batch Operations' response: one result per task. ``Succeeded`` for ok, invalid,
    unreadable and skipped (``resultString`` says which), ``TemporaryFailure`` for what a retry
    may cure and for tasks not started in time, ``PermanentFailure`` where the object does not
    exist, the bucket is not the deployment's, or the task is malformed. A task without a
    ``taskId`` cannot be answered: it is logged, counted and left out."""
    # Batch Operations only (module doc).
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (  # noqa: PLC0415
        S3BatchOperationResponseRecord,
        S3BatchOperationTask,
    )

    invocation_id = event.get("invocationId")
    if not isinstance(invocation_id, str) or not invocation_id:
        raise events.UnknownEvent(
            "an S3 Batch Operations job without an invocationId: it cannot be answered"
        )
    results: list[S3BatchOperationResponseRecord] = []
    for index, raw in enumerate(event["tasks"]):
        task_id = events.batch_task_id(raw)
        if task_id is None:
            _report_malformed("a Batch Operations task without a taskId", f"tasks[{index}]")
            continue
        if not deadline.allows_another():
            _report_deferred(1, "task(s)", message_id=task_id)
            message = "not started: the invocation's time ran short; retried"
            results.append(S3BatchOperationResponseRecord(task_id, "TemporaryFailure", message))
            continue
        try:
            item = events.from_batch_task(S3BatchOperationTask(raw))
        except MalformedEvent as error:
            _report_malformed(str(error), task_id)
            results.append(
                S3BatchOperationResponseRecord(task_id, "PermanentFailure", f"malformed: {error}")
            )
            continue
        try:
            outcome = _process_one(client, item, settings)
        except Exception as exc:  # noqa: BLE001 - reported per task, as Batch Operations expects
            message = f"{type(exc).__name__}: {exc}"
            results.append(S3BatchOperationResponseRecord(task_id, "TemporaryFailure", message))
            continue
        code: Literal["Succeeded", "PermanentFailure"] = (
            "PermanentFailure" if _is_permanent(outcome.reason) else "Succeeded"
        )
        results.append(S3BatchOperationResponseRecord(task_id, code, _result_string(outcome)))
    # Powertools' S3BatchOperationResponse.asdict insists on exactly one task (what AWS sends
    # today); the format allows several, so the envelope is built here from its records.
    return {
        "invocationSchemaVersion": event["invocationSchemaVersion"],
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": invocation_id,
        "results": [result.asdict() for result in results],
    }


def _is_permanent(reason: Reason | None) -> bool:
    """Whether a Batch Operations task is work the function will not do, whatever a retry
    brings: a missing object, a bucket not the deployment's (a wrong manifest shows in the job's
    failure report, and the job's failure threshold stops it early)."""
    return reason is Reason.SOURCE_DELETED or (reason is not None and reason.is_refusal)


def _result_string(outcome: Outcome) -> str:
    """What a Batch Operations completion report shows for a task."""
    if outcome.status is Status.OK:
        return f"ok: {outcome.result_key}"
    if outcome.status in (Status.INVALID, Status.UNREADABLE):
        return f"{outcome.status.value} ({outcome.error_code}): {outcome.result_key}"
    if outcome.status is Status.WITHDRAWN:  # the input was deleted while its task ran
        return f"withdrawn: {outcome.result_key}"
    return f"skipped: {outcome.reason}"


def _keep_malformed(settings: Settings, body: str, error: Exception, origin: str) -> bool:
    """Log and count malformed work, and send a copy to ``MALFORMED_QUEUE_URL``. Whether it is
    kept there: ``False`` where no queue is named or the copy failed (then the caller keeps it
    by retrying)."""
    _report_malformed(str(error), origin)
    if settings.malformed_queue_url is None:
        return False
    try:
        quarantine.keep(settings.malformed_queue_url, body, problem=str(error), origin=origin)
    except Exception:  # noqa: BLE001 - any failure to keep it: it is retried instead
        logger.exception(
            "malformed work could not be kept; it is retried", extra={"origin": origin}
        )
        return False
    return True


def _report_malformed(problem: str, origin: str) -> None:
    logger.error(
        "malformed S3 work; kept for an operator",
        extra={"message_id": origin, "problem": problem},
    )
    metrics.add_metric(name="MessagesMalformed", unit=MetricUnit.Count, value=1)


def _report_deferred(count: int, what: str, message_id: str | None = None) -> None:
    logger.warning(
        f"{count} {what} handed back unstarted: the invocation's time ran short",
        extra={"message_id": message_id, "deferred": count},
    )
    metrics.add_metric(name="WorkDeferred", unit=MetricUnit.Count, value=count)


def _observe(outcome: Outcome) -> None:
    """Log one structured line per record (never the document's content) and count it."""
    logger.info(
        "record processed",
        extra={
            "bucket": outcome.bucket,
            "key": outcome.key,
            "status": outcome.status.value,
            "reason": outcome.reason.value if outcome.reason else None,
            "result_key": outcome.result_key,
            "product_count": outcome.product_count,
            "error_code": outcome.error_code,
        },
    )
    name = f"Records{outcome.status.value.capitalize()}"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if outcome.reason is not None and outcome.reason.is_refusal:
        logger.warning(
            "record refused: not this deployment's to act on",
            extra={"bucket": outcome.bucket, "key": outcome.key, "reason": outcome.reason},
        )
        metrics.add_metric(name="RecordsRefused", unit=MetricUnit.Count, value=1)
    if outcome.status is Status.OK:
        metrics.add_metric(name="Products", unit=MetricUnit.Count, value=outcome.product_count)
        metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=outcome.bytes_read)
