"""What the function tells its operators (``handler.observability``, docs/configuration.md): the
tracing switch, one log line and the metrics of every record, and the log line and metric of an
SQS message that is not S3 work. Each test asserts what a dashboard, an alarm or a person reading
the logs relies on."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from checks.check_artifact import lock_pins
from handler import observability
from handler.app import RecordsFailed, lambda_handler
from handler.observability import traced
from localrun.invoke import delete_event
from tests.support import BUCKET, emf_metrics, sqs_event, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"event": event}


def test_tracing_on_alone_packages_and_imports_no_tracing_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Active tracing is Lambda's own: the handler is left alone, no X-Ray SDK is needed."""
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert traced(handler) is handler
    root = Path(__file__).resolve().parents[2]
    assert "aws-lambda-powertools==" in (root / "requirements.in").read_text()
    assert "aws-xray-sdk" not in lock_pins((root / "requirements.txt").read_text())


def test_with_an_otlp_endpoint_every_invocation_flushes_its_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flushes: list[str] = []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setattr(observability, "_start_otel", lambda: lambda: flushes.append("flush"))
    wrapped = traced(handler)

    assert wrapped({"a": 1}, None) == {"event": {"a": 1}}
    assert flushes == ["flush"]

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RecordsFailed("throttled")

    with pytest.raises(RecordsFailed):
        traced(failing)({}, None)
    assert flushes == ["flush", "flush"]


# --- an SQS message that is not S3 work: logged, counted, dropped -------------------------------


def test_a_message_that_is_not_s3_work_is_logged_counted_and_dropped(
    context: LocalContext, log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = lambda_handler(sqs_event("not json at all"), context)

    assert answer == {"batchItemFailures": []}  # dropped: a retry would read the same body
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line]
    [dropped] = [line for line in lines if line["message"] == "message is not S3 work; dropped"]
    assert dropped["level"] == "ERROR"
    assert dropped["message_id"] == "m0"
    assert dropped["problem"] == "the message body is not JSON"
    assert emf_metrics(capsys.readouterr().out)["MessagesInvalid"] == ([1.0], "Count")


# --- one log line and the metrics of every record -------------------------------------------------


def records_of(*events: dict[str, Any]) -> dict[str, Any]:
    """One S3 notification carrying the records of ``events``."""
    return {"Records": [record for event in events for record in event["Records"]]}


def test_each_record_is_logged_once_and_counted_by_status(
    s3: S3Client,
    context: LocalContext,
    log_stream: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = b'{"products": [{"price": 1.5}, {"price": 2}]}'
    ok = upload(s3, "ok/market_infos.json", body, sequencer="0A")
    invalid = upload(s3, "bad/market_infos.json", b'{"products": {}}', sequencer="0A")
    skipped = upload(s3, "other/readme.txt", b"not an input", sequencer="0A")

    lambda_handler(records_of(ok, invalid, skipped), context)

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line]
    processed = {line["key"]: line for line in lines if line["message"] == "record processed"}
    assert {line["level"] for line in processed.values()} == {"INFO"}
    # S3's request id of each record is the logs' correlation id.
    assert {line.get("correlation_id") for line in processed.values()} == {"LOCAL"}
    fields = ("bucket", "status", "reason", "result_key", "product_count", "error_code")
    assert {name: processed["ok/market_infos.json"].get(name) for name in fields} == {
        "bucket": BUCKET,
        "status": "ok",
        "reason": None,
        "result_key": "ok/total_price.json",
        "product_count": 2,
        "error_code": None,
    }
    assert {name: processed["bad/market_infos.json"].get(name) for name in fields} == {
        "bucket": BUCKET,
        "status": "invalid",
        "reason": None,
        "result_key": "bad/total_price.json",
        "product_count": 0,
        "error_code": "InvalidSchema",
    }
    assert {name: processed["other/readme.txt"].get(name) for name in fields} == {
        "bucket": BUCKET,
        "status": "skipped",
        "reason": "NotAnInputKey",
        "result_key": None,
        "product_count": 0,
        "error_code": None,
    }
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics == {
        "RecordsOk": ([1.0], "Count"),
        "RecordsInvalid": ([1.0], "Count"),
        "RecordsSkipped": ([1.0], "Count"),
        "Products": ([2.0], "Count"),
        "BytesRead": ([float(len(body))], "Bytes"),
    }


def test_a_failed_record_is_logged_with_its_object_and_counted(
    s3: S3Client,
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RESULT_BUCKET", "no-such-results-bucket")
    event = upload(s3, "m/market_infos.json", b'{"products": []}', sequencer="0A")

    with pytest.raises(RecordsFailed):
        lambda_handler(event, context)

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line]
    [failed] = [line for line in lines if line["message"] == "record failed; it will be retried"]
    assert failed["level"] == "ERROR"
    assert (failed["bucket"], failed["key"]) == (BUCKET, "m/market_infos.json")
    assert "NoSuchBucket" in failed["exception"]
    assert emf_metrics(capsys.readouterr().out) == {"RecordsFailed": ([1.0], "Count")}


def test_a_withdrawal_is_logged_with_its_result_key_and_counted(
    s3: S3Client,
    context: LocalContext,
    log_stream: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "gone/market_infos.json"
    lambda_handler(upload(s3, key, b'{"products": []}', sequencer="0A"), context)
    capsys.readouterr()
    s3.delete_object(Bucket=BUCKET, Key=key)

    lambda_handler(delete_event(BUCKET, key, sequencer="0B"), context)

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line]
    [withdrawn] = [line for line in lines if line.get("status") == "withdrawn"]
    assert (withdrawn["message"], withdrawn["result_key"]) == (
        "record processed",
        "gone/total_price.json",
    )
    assert emf_metrics(capsys.readouterr().out)["RecordsWithdrawn"] == ([1.0], "Count")
