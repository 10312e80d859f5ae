"""The handler end to end on moto: the sample events of ``events/`` are loaded, the objects they
name are seeded, the handler is invoked, and the result objects are asserted on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from handler.app import RecordsFailed, lambda_handler
from handler.events import shape_of
from handler.rules.settings import ConfigurationError
from localrun.invoke import OBJECTS, event_keys, put_event, seed_event_objects
from tests.support import BUCKET, EVENTS, load_event, read_result, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

MARKET = b'{"products": [{"price": 1.25}, {"price": 2}]}'
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def invoke(event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
    summary: dict[str, Any] = lambda_handler(event, context)
    json.dumps(summary)  # the summary must be JSON-serialisable
    return summary


def test_sample_events_name_the_objects_in_events_objects() -> None:
    # The events' eTag and size are those of the files: tests and `make run` rely on it.
    for name in ("put.json", "put-many.json", "put-encoded-key.json"):
        event = load_event(name)
        for record, (_, key) in zip(event["Records"], event_keys(event), strict=True):
            path = OBJECTS / key
            if path.is_file():
                body = path.read_bytes()
                assert record["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
                assert record["s3"]["object"]["size"] == len(body)
                assert "sequencer" in record["s3"]["object"]


def test_put_event_writes_the_total_next_to_the_input(s3: S3Client, context: LocalContext) -> None:
    event = load_event("put.json")
    seed_event_objects(s3, event)

    summary = invoke(event, context)

    assert summary == {
        "records": [
            {
                "bucket": BUCKET,
                "key": "market_a/market_infos.json",
                "status": "ok",
                "result_key": "market_a/total_price.json",
            }
        ]
    }
    result = read_result(s3, "market_a/total_price.json")
    body = (OBJECTS / "market_a/market_infos.json").read_bytes()
    assert result == {
        "status": "ok",
        "total": 400,
        "product_count": 2,
        "source": {
            "bucket": BUCKET,
            "key": "market_a/market_infos.json",
            "version_id": None,
            "etag": hashlib.md5(body).hexdigest(),  # without quotes
            "sequencer": "0062A1B2C3D4E5F601",
            "size": len(body),
        },
        "computed_at": result["computed_at"],
    }
    assert TIMESTAMP.match(result["computed_at"])
    head = s3.head_object(Bucket=BUCKET, Key="market_a/total_price.json")
    assert head["ContentType"] == "application/json"


def test_several_records_are_handled_each_on_its_own_in_order(
    s3: S3Client, context: LocalContext
) -> None:
    event = load_event("put-many.json")
    seed_event_objects(s3, event)

    summary = invoke(event, context)

    assert [(r["key"], r["status"], r.get("reason")) for r in summary["records"]] == [
        ("market_a/market_infos.json", "ok", None),
        ("market_b/market_infos.json", "ok", None),
        ("market_b/notes.txt", "skipped", "NotAnInputKey"),
    ]
    assert read_result(s3, "market_a/total_price.json")["total"] == 400
    market_b = read_result(s3, "market_b/total_price.json")
    assert market_b["total"] == Decimal("12.80")  # 0.1 + 0.2 + 12.50, exactly
    assert market_b["product_count"] == 3
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {
        "market_a/market_infos.json",
        "market_a/total_price.json",
        "market_b/market_infos.json",
        "market_b/total_price.json",
    }


def test_url_encoded_keys_are_decoded(s3: S3Client, context: LocalContext) -> None:
    event = load_event("put-encoded-key.json")
    assert event["Records"][0]["s3"]["object"]["key"] == "market+a/m%C3%A4rkte/market_infos.json"
    seed_event_objects(s3, event)

    summary = invoke(event, context)

    assert summary["records"][0]["key"] == "market a/märkte/market_infos.json"
    result = read_result(s3, "market a/märkte/total_price.json")
    assert result["total"] == Decimal("400.00")
    assert result["source"]["key"] == "market a/märkte/market_infos.json"


def test_object_removed_with_no_result_is_skipped_without_a_write(
    s3: S3Client, context: LocalContext
) -> None:
    summary = invoke(load_event("delete.json"), context)

    assert summary["records"] == [
        {
            "bucket": BUCKET,
            "key": "market_a/market_infos.json",
            "status": "skipped",
            "reason": "NoResultToWithdraw",
        }
    ]
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_s3_test_event_is_a_no_op(s3: S3Client, context: LocalContext) -> None:
    assert invoke(load_event("test-event.json"), context) == {"records": []}
    assert invoke({"Records": []}, context) == {"records": []}
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_a_result_key_never_triggers_work(s3: S3Client, context: LocalContext) -> None:
    # The guard against loops: a write of total_price.json that reaches the function is skipped.
    event = upload(s3, "market_a/total_price.json", b'{"status": "ok"}', sequencer="01")
    summary = invoke(event, context)
    assert summary["records"][0]["reason"] == "NotAnInputKey"
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_invalid_input_is_answered_not_raised(s3: S3Client, context: LocalContext) -> None:
    event = upload(
        s3, "m/market_infos.json", b'{"products": [{"price": 1}, {"price": "2"}]}', sequencer="01"
    )

    summary = invoke(event, context)

    assert summary["records"][0]["status"] == "invalid"
    assert summary["records"][0]["result_key"] == "m/total_price.json"
    result = read_result(s3, "m/total_price.json")
    assert result["status"] == "invalid"
    assert result["error"] == {
        "code": "InvalidSchema",
        "message": "products[1].price: expected a number, got a string",
    }
    assert result["source"]["key"] == "m/market_infos.json"
    assert TIMESTAMP.match(result["computed_at"])
    assert set(result) == {"status", "error", "source", "computed_at"}


def test_an_invalid_result_keeps_its_text_unescaped(s3: S3Client, context: LocalContext) -> None:
    # Results are UTF-8 JSON with the characters themselves, as in an ok result.
    key = "märkte/market_infos.json"
    lambda_handler(upload(s3, key, '{"products": "käse"}'.encode(), sequencer="0A"), context)

    raw = s3.get_object(Bucket=BUCKET, Key="märkte/total_price.json")["Body"].read()
    assert '"key": "märkte/market_infos.json"'.encode() in raw
    assert b"\\u" not in raw
    assert json.loads(raw)["status"] == "invalid"


def test_empty_object_is_invalid_json(s3: S3Client, context: LocalContext) -> None:
    invoke(upload(s3, "m/market_infos.json", b"", sequencer="01"), context)
    assert read_result(s3, "m/total_price.json")["error"]["code"] == "InvalidJSON"


def test_objects_over_the_limit_are_too_large(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_INPUT_BYTES", "10")
    body = b'{"products": [{"price": 1}]}'
    invoke(upload(s3, "m/market_infos.json", body, sequencer="01"), context)
    result = read_result(s3, "m/total_price.json")
    assert result["error"] == {
        "code": "TooLarge",
        "message": f"the object has {len(body)} bytes; the limit is 10 bytes",
    }
    assert result["source"]["size"] == len(body)


def test_result_bucket_setting(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_bucket(Bucket="market-totals-results")
    monkeypatch.setenv("RESULT_BUCKET", "market-totals-results")
    invoke(
        upload(s3, "m/market_infos.json", b'{"products": [{"price": 5}]}', sequencer="01"), context
    )
    assert read_result(s3, "m/total_price.json", bucket="market-totals-results")["total"] == 5
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1  # only the input


def test_input_suffix_and_result_name_settings(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INPUT_SUFFIX", "prices.json")
    monkeypatch.setenv("RESULT_NAME", "sum.json")
    summary = invoke(
        upload(s3, "shop/prices.json", b'{"products": [{"price": 2}]}', sequencer="01"), context
    )
    assert summary["records"][0]["result_key"] == "shop/sum.json"
    assert read_result(s3, "shop/sum.json")["total"] == 2
    skipped = invoke(
        upload(s3, "shop/market_infos.json", b'{"products": []}', sequencer="01"), context
    )
    assert skipped["records"][0]["reason"] == "NotAnInputKey"


def test_bad_configuration_is_raised_so_the_event_is_retried(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_INPUT_BYTES", "lots")
    with pytest.raises(ConfigurationError):
        invoke(load_event("put.json"), context)


def test_transient_failure_is_raised_after_every_record_was_tried(
    s3: S3Client, context: LocalContext
) -> None:
    event = load_event("put-many.json")
    seed_event_objects(s3, event)
    # The first record names a bucket that does not exist: a failure that is not the input's.
    event["Records"][0]["s3"]["bucket"]["name"] = "market-totals-missing"

    with pytest.raises(RecordsFailed, match=r"1 of 3 record\(s\) failed") as caught:
        invoke(event, context)

    assert "market-totals-missing/market_a/market_infos.json" in str(caught.value)
    # The records after the failed one were still processed.
    assert read_result(s3, "market_b/total_price.json")["status"] == "ok"


def test_the_failure_names_every_failed_record_separated_by_semicolons(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESULT_BUCKET", "no-such-results-bucket")
    first = upload(s3, "a/market_infos.json", MARKET, sequencer="0A")
    second = upload(s3, "b/market_infos.json", MARKET, sequencer="0A")
    event = {"Records": first["Records"] + second["Records"]}

    with pytest.raises(RecordsFailed) as raised:
        lambda_handler(event, context)

    head, _, rest = str(raised.value).partition(": ")
    assert head == "2 of 2 record(s) failed"
    parts = rest.split("; ")
    assert len(parts) == 2
    assert parts[0].startswith(f"{BUCKET}/a/market_infos.json: NoSuchBucket: An error occurred")
    assert parts[1].startswith(f"{BUCKET}/b/market_infos.json: NoSuchBucket: An error occurred")


def test_malformed_record_fails_loudly(s3: S3Client, context: LocalContext) -> None:
    from handler.events import UnknownEvent

    with pytest.raises(UnknownEvent, match=r"eventSource|Records from \['None'\]"):
        invoke({"Records": [{"eventName": "ObjectCreated:Put"}]}, context)
    with pytest.raises(UnknownEvent, match="an S3 notification record without 's3'"):
        invoke({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}, context)


def test_event_without_sequencer_or_etag_reads_the_current_object(
    s3: S3Client, context: LocalContext
) -> None:
    s3.put_object(Bucket=BUCKET, Key="h/market_infos.json", Body=b'{"products": [{"price": 3}]}')
    event = put_event(BUCKET, "h/market_infos.json", etag="", size=0, sequencer=None)
    invoke(event, context)
    result = read_result(s3, "h/total_price.json")
    assert result["total"] == 3
    assert result["source"]["sequencer"] is None


def test_client_is_not_created_at_import_time() -> None:
    # Importing the handler with every way of making a client broken must still work.
    code = (
        "import boto3, boto3.session\n"
        "def boom(*a, **k): raise AssertionError('client made at import')\n"
        "boto3.client = boto3.session.Session.client = boom\n"
        "import handler.app\n"
        "print('imported')\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "imported"


def test_events_directory_has_the_documented_samples() -> None:
    names = {p.name for p in EVENTS.glob("*.json")}
    assert {"put.json", "put-many.json", "put-encoded-key.json", "delete.json"} <= names
    assert "test-event.json" in names


def test_every_file_in_events_is_an_event_the_function_takes() -> None:
    # `make run ARGS="--event events/..."` takes any of them (README); SAM's env file for
    # `sam local invoke` lives in scripts/sam_local/, not here.
    shapes = {path.name: shape_of(load_event(path.name)) for path in EVENTS.glob("*.json")}
    assert "put.json" in shapes


def test_a_new_client_is_made_on_every_invocation(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler import storage

    made: list[object] = []
    make_client = storage.new_client

    def recording_client() -> S3Client:
        made.append(client := make_client())
        return client

    monkeypatch.setattr(storage, "new_client", recording_client)
    event = load_event("put.json")
    seed_event_objects(s3, event)
    invoke(event, context)
    invoke(event, context)
    assert len(made) == 2
    assert made[0] is not made[1]
