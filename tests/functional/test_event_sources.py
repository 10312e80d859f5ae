"""Every shape in which S3 work reaches the function, end to end on moto: what is written, and
the answer each invoker expects (docs/behaviour.md, "Event sources"). Ordering on emitters whose
sequencers mean nothing (LocalStack's constant one, sample events' "Happy Sequencer", none at all)
is here too: a result never goes backwards, and converges to the key's current object."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from handler.app import RecordsFailed, lambda_handler
from handler.events import UnknownEvent
from tests.support import (
    BUCKET,
    batch_event,
    eventbridge_event,
    load_event,
    read_result,
    sns_envelope,
    sqs_event,
    upload,
)
from tests.support import upload_price as put

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

KEY = "market_a/market_infos.json"
RESULT = "market_a/total_price.json"
LOCALSTACK = "0055AED6DCD90281E5"
MARKET = b'{"products": [{"price": 1.25}, {"price": 2}]}'


def doc(*prices: int | str) -> bytes:
    return json.dumps({"products": [{"price": p} for p in prices]}).encode()


# --- SQS ------------------------------------------------------------------------------------


def test_sqs_batch_names_exactly_the_messages_that_failed_transiently(
    s3: S3Client, context: LocalContext
) -> None:
    ok = put(s3, 5, "0A")
    missing_bucket = put(s3, 6, "0B", key="market_b/market_infos.json")
    missing_bucket["Records"][0]["s3"]["bucket"]["name"] = "market-totals-missing"
    invalid_doc = upload(s3, "market_c/market_infos.json", b"{not json", sequencer="0C")
    event = sqs_event(
        json.dumps(ok),  # m0: ok
        json.dumps(missing_bucket),  # m1: NoSuchBucket, a failure a retry may cure
        json.dumps(invalid_doc),  # m2: an invalid document is answered, not reported
        json.dumps(load_event("test-event.json")),  # m3: no work
        "this is not an S3 notification",  # m4: invalid input is answered, not reported
    )

    answer = lambda_handler(event, context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert read_result(s3, RESULT)["total"] == 5
    assert read_result(s3, "market_c/total_price.json")["error"]["code"] == "InvalidJSON"


def test_sqs_batch_where_every_message_failed_lists_them_all(
    s3: S3Client, context: LocalContext
) -> None:
    bodies = []
    for name in ("a", "b"):
        event = put(s3, 1, "0A", key=f"{name}/market_infos.json")
        event["Records"][0]["s3"]["bucket"]["name"] = "market-totals-missing"
        bodies.append(json.dumps(event))
    answer = lambda_handler(sqs_event(*bodies), context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_sqs_message_from_sns_fan_out(s3: S3Client, context: LocalContext) -> None:
    event = sqs_event(json.dumps(sns_envelope(put(s3, 7, "0A"))))
    assert lambda_handler(event, context) == {"batchItemFailures": []}
    assert read_result(s3, RESULT)["total"] == 7


def test_sqs_message_from_eventbridge(s3: S3Client, context: LocalContext) -> None:
    event = sqs_event(json.dumps(eventbridge_event(put(s3, 8, "0A"))))
    assert lambda_handler(event, context) == {"batchItemFailures": []}
    assert read_result(s3, RESULT)["total"] == 8


def test_a_notification_with_a_message_member_is_still_s3_work(
    s3: S3Client, context: LocalContext
) -> None:
    # Only SNS's envelope ("Type": "Notification") is unwrapped; a "Message" member of anything
    # else is just another member.
    event = upload(s3, "m/market_infos.json", MARKET, sequencer="0A")
    body = json.dumps({**event, "Message": "a note some tool added"})

    answer = lambda_handler(sqs_event(body), context)

    assert answer == {"batchItemFailures": []}
    assert read_result(s3, "m/total_price.json")["total"] == 3.25


def test_sqs_message_with_several_records_fails_as_a_whole_and_keeps_what_succeeded(
    s3: S3Client, context: LocalContext
) -> None:
    first = put(s3, 1, "0A")
    second = put(s3, 2, "0B", key="market_b/market_infos.json")
    second["Records"][0]["s3"]["bucket"]["name"] = "market-totals-missing"
    both = {"Records": first["Records"] + second["Records"]}
    assert lambda_handler(sqs_event(json.dumps(both)), context) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]
    }
    assert read_result(s3, RESULT)["total"] == 1  # the retry finds it a duplicate


# --- EventBridge ----------------------------------------------------------------------------


def test_eventbridge_object_created_writes_the_result(s3: S3Client, context: LocalContext) -> None:
    key = "market a/märkte/market_infos.json"
    event = eventbridge_event(put(s3, 9, "0062A1B2C3D4E5F601", key=key))
    assert lambda_handler(event, context) == {
        "records": [
            {
                "bucket": BUCKET,
                "key": key,
                "status": "ok",
                "result_key": "market a/märkte/total_price.json",
            }
        ]
    }
    result = read_result(s3, "market a/märkte/total_price.json")
    assert (result["total"], result["source"]["sequencer"]) == (9, "0062a1b2c3d4e5f601")


def test_eventbridge_other_detail_types_are_skipped(s3: S3Client, context: LocalContext) -> None:
    event = eventbridge_event(put(s3, 9, "0A"))
    event["detail-type"] = "Object Restore Initiated"  # r4: Completed now totals
    assert lambda_handler(event, context)["records"][0]["reason"] == "NotObjectCreated"
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_eventbridge_failure_is_raised_for_lambda_to_retry(
    s3: S3Client, context: LocalContext
) -> None:
    event = eventbridge_event(put(s3, 9, "0A"))
    event["detail"]["bucket"]["name"] = "market-totals-missing"
    with pytest.raises(RecordsFailed, match="1 of 1 record"):
        lambda_handler(event, context)


def test_lowercase_and_uppercase_sequencers_order_as_numbers(
    versioned: S3Client, context: LocalContext
) -> None:
    old = put(versioned, 1, "0062A1B2C3D4E5F601")
    new = put(versioned, 2, "0062A1B2C3D4E5F602")
    # The later upload arrives through EventBridge (lowercase), the earlier one as a notification.
    assert lambda_handler(eventbridge_event(new), context)["records"][0]["status"] == "ok"
    assert lambda_handler(old, context)["records"][0]["reason"] == "ResultUpToDate"
    assert read_result(versioned, RESULT)["total"] == 2


# --- S3 Batch Operations --------------------------------------------------------------------


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_batch_operations_task_is_answered_in_aws_format(
    s3: S3Client, context: LocalContext, schema: str
) -> None:
    key = "märkte/c++ 100%/market_infos.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=doc(150, 250))
    event = batch_event(key, schema=schema)

    answer = lambda_handler(event, context)

    assert answer == {
        "invocationSchemaVersion": schema,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [
            {
                "taskId": event["tasks"][0]["taskId"],
                "resultCode": "Succeeded",
                "resultString": "ok: märkte/c++ 100%/total_price.json",
            }
        ],
    }
    result = read_result(s3, "märkte/c++ 100%/total_price.json")
    assert (result["total"], result["source"]["sequencer"]) == (400, None)


def _batch_result(answer: dict[str, Any]) -> tuple[str, str]:
    result = answer["results"][0]
    return result["resultCode"], result["resultString"]


def test_batch_operations_outcomes(s3: S3Client, context: LocalContext) -> None:
    s3.put_object(Bucket=BUCKET, Key="bad/market_infos.json", Body=b"[]")
    s3.put_object(Bucket=BUCKET, Key="x/notes.txt", Body=b"hello")
    run: Callable[[str], tuple[str, str]] = lambda key: _batch_result(  # noqa: E731
        lambda_handler(batch_event(key), context)
    )

    assert run("bad/market_infos.json") == (
        "Succeeded",
        "invalid (InvalidSchema): bad/total_price.json",
    )
    assert run("x/notes.txt") == ("Succeeded", "skipped: NotAnInputKey")
    assert run("gone/market_infos.json") == ("PermanentFailure", "skipped: SourceDeleted")
    bucketless = batch_event("a/market_infos.json", bucket="market-totals-missing")
    code, message = _batch_result(lambda_handler(bucketless, context))
    assert (code, message.split(":")[0]) == ("TemporaryFailure", "NoSuchBucket")


def test_every_task_of_a_batch_job_gets_its_result_after_a_failed_one(
    s3: S3Client, context: LocalContext
) -> None:
    upload(s3, "ok/market_infos.json", MARKET)
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


@pytest.mark.timeout(20)
def test_a_batch_task_whose_result_head_cannot_be_sent_fails_without_hanging(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore refuses the bucket name before sending the HEAD: the GET must not wait for a
    # send that never comes.
    monkeypatch.setenv("RESULT_BUCKET", "not/a-bucket")
    upload(s3, "m/market_infos.json", MARKET)

    answer = lambda_handler(batch_event("m/market_infos.json"), context)

    [result] = answer["results"]
    assert result["resultCode"] == "TemporaryFailure"
    assert result["resultString"].startswith("ParamValidationError: ")


def test_batch_operations_rerun_skips_what_is_current(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=doc(3))
    assert _batch_result(lambda_handler(batch_event(KEY), context))[0] == "Succeeded"
    first = s3.head_object(Bucket=BUCKET, Key=RESULT)["ETag"]
    s3_calls.clear()

    assert _batch_result(lambda_handler(batch_event(KEY), context)) == (
        "Succeeded",
        "skipped: ResultUpToDate",
    )
    assert s3_calls == ["HeadObject", "GetObject"]  # no version named: the current one is read
    assert s3.head_object(Bucket=BUCKET, Key=RESULT)["ETag"] == first


def test_batch_operations_never_roll_back_a_live_result(
    versioned: S3Client, context: LocalContext
) -> None:
    old = put(versioned, 1, "01")
    put(versioned, 2, "02")
    # A manifest listing the old version, after the live event of the new one was handled.
    lambda_handler(put(versioned, 3, "03"), context)
    version = old["Records"][0]["s3"]["object"]["versionId"]
    answer = lambda_handler(batch_event(KEY, version_id=version), context)
    assert _batch_result(answer) == ("Succeeded", "skipped: SourceChanged")
    assert read_result(versioned, RESULT)["total"] == 3


# --- Ordering on emitters whose sequencers mean nothing --------------------------------------


@pytest.mark.parametrize("sequencer", [LOCALSTACK, "Happy Sequencer", None])
@pytest.mark.parametrize("order", ["in order", "reversed"])
@pytest.mark.parametrize("bucket_kind", ["versioned", "unversioned"])
def test_two_uploads_converge_to_the_current_object(
    s3: S3Client,
    context: LocalContext,
    sequencer: str | None,
    order: str,
    bucket_kind: str,
) -> None:
    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = put(s3, 1, sequencer)
    second = put(s3, 2, sequencer)
    events = [first, second] if order == "in order" else [second, first]

    for event in events:
        lambda_handler(event, context)

    result = read_result(s3, RESULT)
    assert result["total"] == 2
    assert result["source"]["etag"] == second["Records"][0]["s3"]["object"]["eTag"]


@pytest.mark.parametrize("bucket_kind", ["versioned", "unversioned"])
def test_a_duplicate_is_the_same_version_not_the_same_sequencer(
    s3: S3Client, context: LocalContext, s3_calls: list[str], bucket_kind: str
) -> None:
    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = put(s3, 1, LOCALSTACK)
    lambda_handler(event, context)
    written = s3.head_object(Bucket=BUCKET, Key=RESULT)["ETag"]
    s3_calls.clear()

    assert lambda_handler(event, context)["records"][0]["reason"] == "ResultUpToDate"
    assert s3_calls == ["HeadObject"]
    assert s3.head_object(Bucket=BUCKET, Key=RESULT)["ETag"] == written


def test_a_stale_event_without_a_usable_sequencer_never_rolls_back(
    versioned: S3Client, context: LocalContext
) -> None:
    old = put(versioned, 1, "Happy Sequencer")
    lambda_handler(put(versioned, 2, "0A"), context)  # a real event of the newer version

    assert lambda_handler(old, context)["records"][0]["reason"] == "SourceChanged"
    assert read_result(versioned, RESULT)["total"] == 2


def test_a_race_lost_to_a_newer_object_is_not_overwritten(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stale invocation reads its (then current) object; before it writes, a newer object is
    uploaded and its result written. The stale write conflicts, looks again, and steps back."""
    from handler import storage

    stale = put(s3, 1, LOCALSTACK)
    make_client = storage.new_client
    raced: list[int] = []

    def racing_client() -> S3Client:
        client = make_client()

        def newer_upload_handled(**_: Any) -> None:
            if not raced:
                raced.append(1)
                newer = put(s3, 2, LOCALSTACK)
                monkeypatch.setattr(storage, "new_client", make_client)
                lambda_handler(newer, context)
                monkeypatch.setattr(storage, "new_client", racing_client)

        client.meta.events.register("before-call.s3.PutObject", newer_upload_handled)
        return client

    monkeypatch.setattr(storage, "new_client", racing_client)

    assert lambda_handler(stale, context)["records"][0]["reason"] == "SourceChanged"
    assert raced == [1]
    assert read_result(s3, RESULT)["total"] == 2


# --- Anything else --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": [{"eventSource": "aws:dynamodb"}]},
        {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"},
    ],
)
def test_any_other_shape_is_a_configuration_error(
    s3: S3Client, context: LocalContext, event: dict[str, Any]
) -> None:
    with pytest.raises(UnknownEvent):
        lambda_handler(event, context)


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
