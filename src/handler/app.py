"""The Lambda entry point: wires S3 event records to the core (``totals``), the result rules
(``results``) and S3 (``storage``). The behaviour it promises is ``CONTRACT.md``'s.

Each record is handled on its own. Invalid input is answered with a ``status: invalid`` result
(a retry cannot help); any other failure is raised once every record has been tried, so Lambda
retries the event, and records that already succeeded are skipped as duplicates on the retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from handler import storage
from handler.observability import logger, metrics, traced
from handler.results import (
    SourceInfo,
    invalid_document,
    is_later,
    ok_document,
    result_key,
    utc_timestamp,
)
from handler.settings import Settings
from handler.totals import InvalidDocument, too_large, total_prices

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client

#: How often a write is tried again after another invocation changed the result in between.
#: Each conflict means someone else made progress, so a handful is plenty.
MAX_WRITE_ATTEMPTS: Final = 5


class RecordsFailed(RuntimeError):
    """Some records failed for a reason a retry may cure (throttling, 5xx, timeouts, access
    denied, configuration). Raised after every record was tried, so Lambda retries the event."""


@dataclass
class Outcome:
    """One record's entry of the handler's summary, plus what metrics need."""

    bucket: str
    key: str
    status: str
    reason: str | None = None
    result_key: str | None = None
    product_count: int = 0
    bytes_read: int = 0
    error_code: str | None = None

    def summary(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "status": self.status}
        if self.reason is not None:
            entry["reason"] = self.reason
        if self.result_key is not None:
            entry["result_key"] = self.result_key
        return entry


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_env()
    client = storage.new_client()
    outcomes: list[Outcome] = []
    failures: list[str] = []
    # An event without Records (s3:TestEvent) is a no-op.
    for raw in event.get("Records") or []:
        record = S3EventRecord(raw)
        try:
            outcome = _process_record(client, record, settings)
        except Exception as exc:  # noqa: BLE001 - every record is tried before raising
            where = _describe(raw)
            logger.exception("record failed; the event will be retried", extra={"record": where})
            metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
            failures.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        _observe(outcome)
        outcomes.append(outcome)
    if failures:
        raise RecordsFailed(
            f"{len(failures)} of {len(failures) + len(outcomes)} record(s) failed: "
            + "; ".join(failures)
        )
    return {"records": [outcome.summary() for outcome in outcomes]}


def _process_record(client: S3Client, record: S3EventRecord, settings: Settings) -> Outcome:
    bucket = record.s3.bucket.name
    obj = record.s3.get_object
    key = unquote_plus(obj.key)  # keys arrive URL-encoded; Powertools gives them raw
    logger.set_correlation_id((record.get("responseElements") or {}).get("x-amz-request-id"))

    if not record.event_name.startswith("ObjectCreated:"):
        return Outcome(bucket, key, "skipped", reason="NotObjectCreated")
    if not key.endswith(settings.input_suffix):
        return Outcome(bucket, key, "skipped", reason="NotAnInputKey")

    sequencer: str | None = obj.get("sequencer") or None
    out_bucket = settings.result_bucket or bucket
    out_key = result_key(key, settings.result_name)

    # Duplicates and stale events stop here, after a single HEAD.
    stored = storage.stored_result(client, out_bucket, out_key) if sequencer else None
    if _is_current(stored, key, sequencer):
        return Outcome(bucket, key, "skipped", reason="ResultUpToDate")

    try:
        source = storage.open_source(client, bucket, key, obj.version_id, obj.etag or None)
    except storage.SourceGone:
        return Outcome(bucket, key, "skipped", reason="SourceSuperseded")

    info = SourceInfo(
        bucket=bucket,
        key=key,
        version_id=source.version_id,
        etag=source.etag,
        sequencer=sequencer,
        size=source.size,
    )
    outcome = Outcome(bucket, key, "ok", result_key=out_key)
    try:
        if source.size > settings.max_input_bytes:
            raise too_large(source.size, settings.max_input_bytes)
        total = total_prices(source.response["Body"])
        body = ok_document(total, info, utc_timestamp())
        outcome.product_count = total.product_count
        outcome.bytes_read = source.size
    except InvalidDocument as error:
        body = invalid_document(error, info, utc_timestamp())
        outcome.status = "invalid"
        outcome.error_code = error.code
    finally:
        source.close()

    for _ in range(MAX_WRITE_ATTEMPTS):
        try:
            storage.write_result(
                client,
                out_bucket,
                out_key,
                body,
                sequencer=sequencer,
                source_key=key,
                replaces=stored,
                conditional=sequencer is not None,
            )
            return outcome
        except storage.ResultConflict:
            # Another invocation wrote in between: is its result later than ours?
            stored = storage.stored_result(client, out_bucket, out_key)
            if _is_current(stored, key, sequencer):
                return Outcome(bucket, key, "skipped", reason="ResultUpToDate")
    raise storage.ResultConflict(f"{out_key} changed on each of {MAX_WRITE_ATTEMPTS} writes")


def _describe(raw: dict[str, Any]) -> str:
    """``bucket/key`` of a record for error messages, even where the record is malformed."""
    s3 = raw.get("s3") or {}
    bucket = (s3.get("bucket") or {}).get("name", "?")
    return f"{bucket}/{unquote_plus(str((s3.get('object') or {}).get('key', '?')))}"


def _is_current(stored: storage.StoredResult | None, key: str, sequencer: str | None) -> bool:
    """Whether the stored result already reflects this event or a later one of the same key."""
    return (
        sequencer is not None
        and stored is not None
        and stored.sequencer is not None
        and stored.is_from(key)
        and not is_later(sequencer, stored.sequencer)
    )


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
