"""Events and answers at the edges: what an unknown event's error says, SQS bodies that look
half like SNS, Batch Operations jobs with several tasks, the failure message of several records,
and results of a key whose bytes come back in a new version. Written to kill mutants that
``make mutation`` found surviving (docs/mutation.md), through ``lambda_handler`` on moto."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, cast

import pytest

from handler import storage
from handler.app import RecordsFailed, lambda_handler
from handler.sources import UnknownEvent
from support import BUCKET, batch_event, read_result, sqs_event, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from local_invoke import LocalContext

DOC = b'{"products": [{"price": 1.25}, {"price": 2}]}'


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"foo": 1}, "an event of unknown shape: keys ['foo']"),
        (
            {f"k{index:02d}": index for index in range(13)},
            "an event of unknown shape: keys "
            + str([f"k{index:02d}" for index in range(12)]),  # at most 12 keys are named
        ),
        (
            {
                "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "invocationSchemaVersion": "3.0",
                "eventSource": "aws:sns",
                "detail": {"secret": "never quoted"},
            },
            "an event of unknown shape: keys ['detail', 'detail-type', 'eventSource', "
            "'invocationSchemaVersion', 'source'], {'source': 'aws.ec2', "
            "'detail-type': 'EC2 Instance State-change Notification', "
            "'invocationSchemaVersion': '3.0', 'eventSource': 'aws:sns'}",
        ),
    ],
    ids=["no hints", "many keys", "every hint"],
)
def test_an_unknown_event_is_described_by_its_keys_and_hints(
    context: LocalContext, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnknownEvent) as raised:
        lambda_handler(event, context)
    assert str(raised.value) == message


def test_a_notification_with_a_message_member_is_still_s3_work(
    s3: S3Client, context: LocalContext
) -> None:
    # Only SNS's envelope ("Type": "Notification") is unwrapped; a "Message" member of anything
    # else is just another member.
    event = upload(s3, "m/market_infos.json", DOC, sequencer="0A")
    body = json.dumps({**event, "Message": "a note some tool added"})

    answer = lambda_handler(sqs_event(body), context)

    assert answer == {"batchItemFailures": []}
    assert read_result(s3, "m/total_price.json")["total"] == 3.25


def test_every_task_of_a_batch_job_gets_its_result_after_a_failed_one(
    s3: S3Client, context: LocalContext
) -> None:
    upload(s3, "ok/market_infos.json", DOC)
    event = batch_event("ok/market_infos.json")
    [ok_task] = event["tasks"]
    failing = {**ok_task, "taskId": "failing-task", "s3Bucket": "no-such-bucket"}
    event["tasks"] = [failing, {**ok_task, "taskId": "ok-task"}]

    answer = lambda_handler(event, context)

    [first, second] = answer["results"]
    assert first["taskId"] == "failing-task"
    assert first["resultCode"] == "TemporaryFailure"
    assert first["resultString"].startswith("NoSuchBucket: An error occurred (NoSuchBucket)")
    assert second == {
        "taskId": "ok-task",
        "resultCode": "Succeeded",
        "resultString": "ok: ok/total_price.json",
    }


def test_the_failure_names_every_failed_record_separated_by_semicolons(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESULT_BUCKET", "no-such-results-bucket")
    first = upload(s3, "a/market_infos.json", DOC, sequencer="0A")
    second = upload(s3, "b/market_infos.json", DOC, sequencer="0A")
    event = {"Records": first["Records"] + second["Records"]}

    with pytest.raises(RecordsFailed) as raised:
        lambda_handler(event, context)

    head, _, rest = str(raised.value).partition(": ")
    assert head == "2 of 2 record(s) failed"
    parts = rest.split("; ")
    assert len(parts) == 2
    assert parts[0].startswith(f"{BUCKET}/a/market_infos.json: NoSuchBucket: An error occurred")
    assert parts[1].startswith(f"{BUCKET}/b/market_infos.json: NoSuchBucket: An error occurred")


@pytest.mark.usefixtures("versioned")
def test_the_same_bytes_in_a_new_version_are_totalled_again_from_that_version(
    s3: S3Client, context: LocalContext
) -> None:
    # In a versioned bucket the result names the version it was read from; a new version with
    # the same bytes (same ETag) is a new source, so its later event rewrites the result.
    key = "v/market_infos.json"
    first = upload(s3, key, DOC, sequencer="0A")
    assert lambda_handler(first, context)["records"][0]["status"] == "ok"
    second = upload(s3, key, DOC, sequencer="0B")
    version = second["Records"][0]["s3"]["object"]["versionId"]
    assert version != first["Records"][0]["s3"]["object"]["versionId"]

    summary = lambda_handler(second, context)

    assert summary["records"][0]["status"] == "ok"
    result = read_result(s3, "v/total_price.json")
    assert result["source"]["version_id"] == version
    assert result["source"]["sequencer"] == "0B"


def test_an_invalid_result_keeps_its_text_unescaped(s3: S3Client, context: LocalContext) -> None:
    # Results are UTF-8 JSON with the characters themselves, as in an ok result.
    key = "märkte/market_infos.json"
    lambda_handler(upload(s3, key, '{"products": "käse"}'.encode(), sequencer="0A"), context)

    raw = s3.get_object(Bucket=BUCKET, Key="märkte/total_price.json")["Body"].read()
    assert '"key": "märkte/market_infos.json"'.encode() in raw
    assert b"\\u" not in raw
    assert json.loads(raw)["status"] == "invalid"


def big_document(size: int) -> bytes:
    """A valid document of at least ``size`` bytes (1 product per ~16 bytes)."""
    product = b'{"price": 1.5},'
    count = size // len(product) + 1
    return b'{"products": [' + product * (count - 1) + b'{"price": 1.5}]}'


def test_a_batch_task_reads_a_large_object_in_parallel_parts(
    s3: S3Client,
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
    s3_calls: list[str],
) -> None:
    # A task names no version: the HEAD of the result and the GET of the source go out together,
    # and the GET honours the parallel read settings like any other.
    monkeypatch.setenv("PARALLEL_READ_BYTES", str(2 * 1024**2))
    monkeypatch.setenv("PARALLEL_READ_PART_BYTES", str(1024**2))
    monkeypatch.setenv("PARALLEL_READ_CONCURRENCY", "2")
    document = big_document(3 * 1024**2)
    upload(s3, "big/market_infos.json", document)

    answer = lambda_handler(batch_event("big/market_infos.json"), context)

    assert answer["results"][0]["resultCode"] == "Succeeded"
    assert s3_calls.count("GetObject") > 1  # ranged parts, not one stream
    result = read_result(s3, "big/total_price.json")
    assert result["product_count"] == document.count(b"price")


@pytest.mark.timeout(20)
def test_a_batch_task_whose_result_head_cannot_be_sent_fails_without_hanging(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore refuses the bucket name before sending the HEAD: the GET must not wait for a
    # send that never comes.
    monkeypatch.setenv("RESULT_BUCKET", "not/a-bucket")
    upload(s3, "m/market_infos.json", DOC)

    answer = lambda_handler(batch_event("m/market_infos.json"), context)

    [result] = answer["results"]
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith("ParamValidationError: ")


def test_sns_invoking_the_function_directly_is_refused_with_the_way_to_do_it(
    context: LocalContext,
) -> None:
    # An SNS notification as SNS delivers it to a function (it spells EventSource so).
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {}}]}

    with pytest.raises(UnknownEvent) as raised:
        lambda_handler(event, context)

    assert str(raised.value) == (
        "an event with Records from ['aws:sns']: this function takes S3 notifications (aws:s3) "
        "or SQS messages (aws:sqs); for SNS fan-out, subscribe an SQS queue to the topic and "
        "trigger the function from the queue"
    )


def test_a_sequencer_that_cannot_order_is_not_stored_with_the_result(
    s3: S3Client, context: LocalContext
) -> None:
    event = upload(s3, "m/market_infos.json", b'{"products": []}', sequencer="Happy Sequencer")

    assert lambda_handler(event, context)["records"][0]["status"] == "ok"

    metadata = s3.head_object(Bucket=BUCKET, Key="m/total_price.json")["Metadata"]
    assert "source-sequencer" not in metadata
    assert set(metadata) == {"source-key-sha256", "source-etag"}


@pytest.mark.parametrize(
    ("answered", "recorded"),
    [(None, None), ("", None), ("null", None), ("3HL4kqtJlcpXroDTDmJ", "3HL4kqtJlcpXroDTDmJ")],
    ids=["absent", "empty", "null (an unversioned object)", "a version id"],
)
def test_a_source_s_version_id_null_means_no_version(
    answered: str | None, recorded: str | None
) -> None:
    response: dict[str, Any] = {"Body": io.BytesIO(b""), "ContentLength": 0, "ETag": '"e"'}
    if answered is not None:
        response["VersionId"] = answered
    assert storage.SourceObject(cast("Any", response)).version_id == recorded
