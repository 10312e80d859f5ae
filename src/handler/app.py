"""The Lambda entry point: recognises the event's shape, hands each object event to
``processing``, and answers in the format its invoker expects (``docs/behaviour.md``, "Input").

| shape                        | answer                                                        |
|------------------------------|---------------------------------------------------------------|
| S3 notification, EventBridge | ``{"records": [...]}``; transient failures raised (retried)    |
|   (creations and deletions)  |                                                               |
| SQS messages                 | ``{"batchItemFailures": [...]}``: the messages to retry       |
| S3 Batch Operations          | AWS's batch response, one result per task                      |
| ``s3:TestEvent``             | ``{"records": []}``                                            |

Any other shape is a configuration error (a wrong trigger), raised with what was received.

What only one shape needs is imported when that shape arrives, not at the cold start: Powertools'
batch utilities (they pull in ``asyncio`` and every event data class) for SQS, the Batch
Operations data classes for Batch Operations (``docs/benchmarks.md``, "Cold start").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.metrics import MetricUnit

from handler import sources, storage
from handler.deletions import follow_deletion
from handler.observability import logger, metrics, traced
from handler.processing import Outcome, process
from handler.settings import Settings
from handler.sources import ObjectEvent, Shape

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
        S3BatchOperationResponseRecord,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client


class RecordsFailed(RuntimeError):
    """Some records failed for a reason a retry may cure (throttling, 5xx, timeouts, access
    denied, configuration). Raised after every record was tried, so Lambda retries the event."""


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    shape = sources.shape_of(event)
    logger.append_keys(event_shape=shape.name)
    if shape is Shape.TEST:
        # Counted, so that the invocation publishes a metric (and says it was only a test).
        metrics.add_metric(name="TestEvents", unit=MetricUnit.Count, value=1)
        return {"records": []}
    # Read on every invocation (cheap), so a changed environment always applies; a bad setting
    # raises before anything is read, and the event is retried once it is fixed.
    settings = Settings.from_env()
    client = storage.new_client()
    if shape is Shape.SQS:
        return _answer_sqs(event, context, client, settings)
    if shape is Shape.BATCH:
        return _answer_batch(event, client, settings)
    # An S3 notification or an EventBridge event: its object events, in order.
    outcomes = _process_all(client, sources.object_events(event), settings)
    return {"records": [outcome.summary() for outcome in outcomes]}


def _process_all(client: S3Client, work: list[ObjectEvent], settings: Settings) -> list[Outcome]:
    """Process every object event; raise ``RecordsFailed`` after all were tried if any failed."""
    outcomes: list[Outcome] = []
    failures: list[str] = []
    for item in work:
        try:
            outcomes.append(_process_one(client, item, settings))
        except Exception as exc:  # noqa: BLE001 - every record is tried before raising
            failures.append(f"{item.bucket}/{item.key}: {type(exc).__name__}: {exc}")
    if failures:
        raise RecordsFailed(
            f"{len(failures)} of {len(work)} record(s) failed: " + "; ".join(failures)
        )
    return outcomes


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
    event: dict[str, Any], context: LambdaContext, client: S3Client, settings: Settings
) -> dict[str, Any]:
    """A partial batch response: exactly the messages that had a transient failure are listed
    (Lambda returns them to the queue); the others are deleted. Powertools does the bookkeeping;
    ``raise_on_entire_batch_failure=False`` keeps the answer a list even when every message
    failed, so the response always names them."""
    # SQS only (module doc).
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    def handle(record: SQSRecord) -> None:
        try:
            work = sources.s3_work_in_message(record.body)
        except sources.InvalidMessage as error:
            # A retry would read the same body: answered here (logged, counted), not retried.
            logger.error(
                "message is not S3 work; dropped",
                extra={"message_id": record.message_id, "problem": str(error)},
            )
            metrics.add_metric(name="MessagesInvalid", unit=MetricUnit.Count, value=1)
            return
        _process_all(client, work, settings)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    return dict(response)


def _answer_batch(event: dict[str, Any], client: S3Client, settings: Settings) -> dict[str, Any]:
    """S3 Batch Operations' response: one result per task. ``Succeeded`` for ok, invalid and
    skipped (``resultString`` says which), ``TemporaryFailure`` for what a retry may cure,
    ``PermanentFailure`` where the object does not exist."""
    # Batch Operations only (module doc).
    from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (  # noqa: PLC0415
        S3BatchOperationEvent,
        S3BatchOperationResponseRecord,
    )

    job = S3BatchOperationEvent(event)
    results: list[S3BatchOperationResponseRecord] = []
    for task in job.tasks:
        try:
            outcome = _process_one(client, sources.from_batch_task(task), settings)
        except Exception as exc:  # noqa: BLE001 - reported per task, as Batch Operations expects
            message = f"{type(exc).__name__}: {exc}"
            results.append(
                S3BatchOperationResponseRecord(task.task_id, "TemporaryFailure", message)
            )
            continue
        code: Literal["Succeeded", "PermanentFailure"] = (
            "PermanentFailure" if outcome.reason == storage.SOURCE_DELETED else "Succeeded"
        )
        results.append(S3BatchOperationResponseRecord(task.task_id, code, _result_string(outcome)))
    # Powertools' S3BatchOperationResponse.asdict insists on exactly one task (what AWS sends
    # today); the format allows several, so the envelope is built here from its records.
    return {
        "invocationSchemaVersion": job.invocation_schema_version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": job.invocation_id,
        "results": [result.asdict() for result in results],
    }


def _result_string(outcome: Outcome) -> str:
    """What a Batch Operations completion report shows for a task."""
    if outcome.status == "ok":
        return f"ok: {outcome.result_key}"
    if outcome.status == "invalid":
        return f"invalid ({outcome.error_code}): {outcome.result_key}"
    if outcome.status == "withdrawn":  # never from a task today: manifests list inputs
        return f"withdrawn: {outcome.result_key}"
    return f"skipped: {outcome.reason}"


def _observe(outcome: Outcome) -> None:
    """Log one structured line per record (never the document's content) and count it."""
    logger.info(
        "record processed",
        extra={
            "bucket": outcome.bucket,
            "key": outcome.key,
            "status": outcome.status,
            "reason": outcome.reason,
            "result_key": outcome.result_key,
            "product_count": outcome.product_count,
            "error_code": outcome.error_code,
        },
    )
    metrics.add_metric(name=f"Records{outcome.status.capitalize()}", unit=MetricUnit.Count, value=1)
    if outcome.status == "ok":
        metrics.add_metric(name="Products", unit=MetricUnit.Count, value=outcome.product_count)
        metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=outcome.bytes_read)
