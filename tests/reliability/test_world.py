"""Contract r4, the events' part: only the deployment's own buckets, ``ExpectedBucketOwner`` on
every request, permanent S3 errors answered ``unreadable``, restores totalled, malformed work
kept for an operator, non-object events refused, and bounded work per invocation; through every
source (S3 notification, SQS with S3/SNS/EventBridge bodies, EventBridge, Batch Operations).
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from handler.app import TIME_MARGIN_MS, RecordsFailed, lambda_handler
from handler.events import MalformedEvent, UnknownEvent
from handler.outcomes import Reason
from handler.rules import scope
from localrun.invoke import LocalContext, delete_event, put_event
from tests.faults import on_handler_clients
from tests.support import (
    BUCKET,
    batch_event,
    emf_metrics,
    eventbridge_event,
    read_result,
    sns_envelope,
    sqs_event,
    upload,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY = "market_a/market_infos.json"
RESULT = "market_a/total_price.json"
MARKET = b'{"products": [{"price": 150.00}, {"price": 250.00}]}'
OWNER = "123456789012"  # moto's account
FOREIGN = "someone-elses-bucket"

# --- helpers --------------------------------------------------------------------------------------


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def metrics_of(stdout: str) -> dict[str, Any]:
    """The metrics Powertools printed (EMF): name -> values."""
    return {name: value for name, (value, _) in emf_metrics(stdout).items()}


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every S3 request the handler's clients send: (operation, headers)."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def install(client: S3Client) -> None:
        def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
            sent.append((event_name.rsplit(".", 1)[1], dict(params["headers"])))

        client.meta.events.register("before-call.s3", record)

    on_handler_clients(monkeypatch, install)
    return sent


def refuse_get(monkeypatch: pytest.MonkeyPatch, code: str, message: str, status: int = 400) -> None:
    """S3 answers every GET of the handler's clients with ``code`` (what real S3 says for an
    archived or SSE-C object; moto has no SSE-C)."""

    def install(client: S3Client) -> None:
        def answer(**_: Any) -> Any:
            error = {"Code": code, "Message": message}
            return SimpleNamespace(status_code=status), {
                "Error": error,
                "ResponseMetadata": {"HTTPStatusCode": status},
            }

        client.meta.events.register("before-call.s3.GetObject", answer)

    on_handler_clients(monkeypatch, install)


def sources_of(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same S3 notification as each source delivers it."""
    return {
        "s3": event,
        "sqs": sqs_event(json.dumps(event)),
        "sns": sqs_event(json.dumps(sns_envelope(event))),
        "sqs-eventbridge": sqs_event(json.dumps(eventbridge_event(event))),
        "eventbridge": eventbridge_event(event),
    }


def foreign(event: dict[str, Any], bucket: str = FOREIGN) -> dict[str, Any]:
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    return event


class ShrinkingContext(LocalContext):
    """A context whose remaining time allows ``budget`` more records, then too little."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget

    def get_remaining_time_in_millis(self) -> int:
        self.budget -= 1
        return TIME_MARGIN_MS + 1_000 if self.budget >= 0 else TIME_MARGIN_MS - 1_000


# --- 2. only its own buckets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["market-totals-demo", "a.b-c", "abc", "a" * 63, "my.bucket.2026"],
)
def test_a_bucket_name_is_accepted(name: str) -> None:
    assert scope.bucket_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "arn:aws:s3:::market-totals-demo",
        "arn:aws:s3:us-east-1:123456789012:accesspoint/ap",
        "my-ap-abcdefgh1234567890123456789012-s3alias",
        "my-olap-abcdefgh123456789012--ol-s3",
        "my-op-abcdefgh123456789012--op-s3",
        "bucket--use1-az4--x-s3",
        "mfzwi23gnjvgw.mrap",
        "bucket/../other",
        "bucket:x",
        "ab",
        "a" * 64,
        "Bucket",
        "bucket_x",
        "-bucket",
        "bucket.",
        "a..b",
        "192.168.1.1",
        "xn--bucket",
        "sthree-bucket",
        "",
    ],
)
def test_what_is_not_a_bucket_name_is_refused(name: str) -> None:
    assert scope.bucket_name_problem(name)
    assert scope.refusal(name, KEY, owns=True) == Reason.NOT_A_BUCKET_NAME


@pytest.mark.parametrize("source", ["s3", "sqs", "sns", "sqs-eventbridge", "eventbridge"])
def test_an_event_for_another_bucket_is_refused_through_every_source(
    s3: S3Client,
    *,
    monkeypatch: pytest.MonkeyPatch,
    requests: list[tuple[str, dict[str, Any]]],
    log_stream: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:
    monkeypatch.setenv("SOURCE_BUCKETS", f" other-bucket , {BUCKET}")
    s3.create_bucket(Bucket=FOREIGN)
    event = foreign(upload(s3, KEY, MARKET, sequencer="0A", bucket=FOREIGN))

    answer = lambda_handler(sources_of(event)[source], LocalContext())

    if source in ("s3", "eventbridge"):
        assert answer["records"] == [
            {"bucket": FOREIGN, "key": KEY, "status": "skipped", "reason": "NotOwnBucket"}
        ]
    else:
        assert answer == {"batchItemFailures": []}  # never retried
    assert requests == []  # not one request for it
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    [refused] = [
        line for line in log_lines(log_stream) if line["message"].startswith("record refused")
    ]
    assert (refused["level"], refused["bucket"], refused["reason"]) == (
        "WARNING",
        FOREIGN,
        "NotOwnBucket",
    )
    assert metrics_of(capsys.readouterr().out)["RecordsRefused"] == [1.0]


def test_a_deletion_for_another_bucket_is_refused(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    monkeypatch.setenv("SOURCE_BUCKETS", BUCKET)
    event = foreign(delete_event(BUCKET, KEY, sequencer="0B"))

    [record] = lambda_handler(event, LocalContext())["records"]

    assert record["reason"] == "NotOwnBucket"
    assert requests == []


def test_an_arn_as_a_bucket_is_refused_even_with_no_list(
    s3: S3Client, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    event = foreign(
        upload(s3, KEY, MARKET, sequencer="0A"), "arn:aws:s3:us-east-1:123456789012:accesspoint/ap"
    )

    [record] = lambda_handler(event, LocalContext())["records"]

    assert record["reason"] == "NotABucketName"
    assert requests == []


def test_the_result_bucket_is_the_deployments_own(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_bucket(Bucket="market-totals-results")
    monkeypatch.setenv("SOURCE_BUCKETS", "unrelated-bucket")
    monkeypatch.setenv("RESULT_BUCKET", "market-totals-results")
    event = upload(s3, KEY, MARKET, sequencer="0A", bucket="market-totals-results")

    [record] = lambda_handler(event, LocalContext())["records"]

    assert record["status"] == "ok"


def test_a_key_longer_than_s3_allows_is_refused_before_any_request(
    s3: S3Client, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    long_key = "m" * 1010 + "/market_infos.json"
    event = upload(s3, KEY, MARKET, sequencer="0A")
    event["Records"][0]["s3"]["object"]["key"] = long_key

    [record] = lambda_handler(event, LocalContext())["records"]

    assert record["reason"] == "KeyTooLong"
    assert requests == []


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_batch_operations_refuse_another_bucket_and_take_their_own(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, schema: str
) -> None:
    monkeypatch.setenv("SOURCE_BUCKETS", BUCKET)
    upload(s3, KEY, MARKET)

    own = lambda_handler(batch_event(KEY, schema=schema), LocalContext())["results"]
    other = lambda_handler(batch_event(KEY, schema=schema, bucket=FOREIGN), LocalContext())

    assert own[0]["resultCode"] == "Succeeded"
    assert own[0]["resultString"] == f"ok: {RESULT}"
    assert other["results"][0]["resultCode"] == "PermanentFailure"
    assert other["results"][0]["resultString"] == "skipped: NotOwnBucket"


def test_a_bad_source_buckets_setting_is_a_configuration_error() -> None:
    from handler.rules.settings import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="SOURCE_BUCKETS names 'arn:aws:s3:::x'"):
        Settings.from_env({"SOURCE_BUCKETS": "good-bucket,arn:aws:s3:::x"})
    with pytest.raises(ConfigurationError, match="EXPECTED_BUCKET_OWNER"):
        Settings.from_env({"EXPECTED_BUCKET_OWNER": "me"})
    assert Settings.from_env({"SOURCE_BUCKETS": " , "}).source_buckets is None


# --- ExpectedBucketOwner --------------------------------------------------------------------------


def test_every_request_carries_the_expected_bucket_owner(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    monkeypatch.setenv("EXPECTED_BUCKET_OWNER", OWNER)
    # Small parallel reads: a 2.5 MiB market is read with three ranged GETs.
    monkeypatch.setenv("PARALLEL_READ_BYTES", str(2 * 1024**2))
    monkeypatch.setenv("PARALLEL_READ_PART_BYTES", str(1024**2))
    products = ",".join(['{"price": 1}'] * 200_000)
    large = upload(s3, KEY, f'{{"products": [{products}]}}'.encode(), sequencer="0A")

    assert lambda_handler(large, LocalContext())["records"][0]["status"] == "ok"
    lambda_handler(delete_event(BUCKET, KEY, sequencer="0B"), LocalContext())
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    lambda_handler(delete_event(BUCKET, KEY, sequencer="0C"), LocalContext())

    operations = [operation for operation, _ in requests]
    assert operations.count("GetObject") >= 4  # the first GET and its ranged parts
    assert "PutObject" in operations
    assert "DeleteObject" in operations
    assert all(headers.get("x-amz-expected-bucket-owner") == OWNER for _, headers in requests)
    assert not s3.list_objects_v2(Bucket=BUCKET).get("KeyCount")


def test_without_the_setting_no_request_carries_it(
    s3: S3Client, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    lambda_handler(upload(s3, KEY, MARKET, sequencer="0A"), LocalContext())

    assert requests
    assert not any("x-amz-expected-bucket-owner" in headers for _, headers in requests)


def test_a_bucket_of_another_owner_is_access_denied_and_retried(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What S3 answers where ``ExpectedBucketOwner`` is not the bucket's owner (moto does not
    check it): AccessDenied, which on the deployment's own bucket stays retried."""
    monkeypatch.setenv("EXPECTED_BUCKET_OWNER", "999999999999")

    def install(client: S3Client) -> None:
        def owner_check(params: dict[str, Any], **_: Any) -> Any:
            if params["headers"].get("x-amz-expected-bucket-owner") != OWNER:
                return SimpleNamespace(status_code=403), {
                    "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                }
            return None

        client.meta.events.register("before-call.s3", owner_check)

    on_handler_clients(monkeypatch, install)

    with pytest.raises(RecordsFailed, match="AccessDenied"):
        lambda_handler(upload(s3, KEY, MARKET, sequencer="0A"), LocalContext())
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1  # no result


# --- 4. permanent S3 errors answered; restores totalled ----------------------------------------


def archived(s3: S3Client, sequencer: str = "0A") -> dict[str, Any]:
    put = s3.put_object(Bucket=BUCKET, Key=KEY, Body=MARKET, StorageClass="GLACIER")
    return put_event(
        BUCKET, KEY, etag=put["ETag"].strip('"'), size=len(MARKET), sequencer=sequencer
    )


def restored(event: dict[str, Any]) -> dict[str, Any]:
    restore: dict[str, Any] = json.loads(json.dumps(event))
    restore["Records"][0]["eventName"] = "ObjectRestore:Completed"
    return restore


@pytest.mark.parametrize("source", ["s3", "sqs", "sns", "sqs-eventbridge", "eventbridge"])
def test_an_archived_input_is_unreadable_at_once_then_totalled_on_its_restore(
    s3: S3Client,
    requests: list[tuple[str, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:
    event = archived(s3)

    answer = lambda_handler(sources_of(event)[source], LocalContext())

    if source in ("s3", "eventbridge"):
        assert answer["records"] == [
            {"bucket": BUCKET, "key": KEY, "status": "unreadable", "result_key": RESULT}
        ]
    else:
        assert answer == {"batchItemFailures": []}  # at once, never retried
    result = read_result(s3, RESULT)
    assert result["status"] == "unreadable"
    assert result["error"]["code"] == "ObjectArchived"
    assert result["source"]["key"] == KEY
    # The fresh record's requests, the look at the key after the write included (convergence).
    assert [operation for operation, _ in requests] == [
        "HeadObject",
        "GetObject",
        "PutObject",
        "HeadObject",
    ]
    assert metrics_of(capsys.readouterr().out)["RecordsUnreadable"] == [1.0]

    s3.restore_object(Bucket=BUCKET, Key=KEY, RestoreRequest={"Days": 1})
    completed = restored(event)
    if source in {"eventbridge", "sqs-eventbridge"}:
        bridge = eventbridge_event(event)
        bridge["detail-type"] = "Object Restore Completed"
        del bridge["detail"]["object"]["sequencer"]
        completed_event: Any = bridge if source == "eventbridge" else sqs_event(json.dumps(bridge))
    else:
        completed_event = sources_of(completed)[source]
    lambda_handler(completed_event, LocalContext())

    result = read_result(s3, RESULT)
    assert result["status"] == "ok"
    assert str(result["total"]) == "400.00"


def test_a_duplicate_of_an_archived_inputs_event_is_answered_again_never_retried(
    s3: S3Client, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    event = archived(s3)
    lambda_handler(event, LocalContext())
    requests.clear()

    [record] = lambda_handler(event, LocalContext())["records"]

    # The unreadable result reflects no version (so that the restore totals it): a duplicate
    # is answered again, at most a fresh record's requests.
    assert record["status"] == "unreadable"
    assert len(requests) <= 3
    assert read_result(s3, RESULT)["status"] == "unreadable"


@pytest.mark.parametrize(
    ("code", "message", "answer"),
    [
        (
            "InvalidRequest",
            "The object was stored using a form of Server Side Encryption. The correct "
            "parameters must be provided to retrieve the object.",
            "CustomerKeyEncrypted",
        ),
        ("KeyTooLongError", "Your key is too long", "KeyRefused"),
        (
            "InvalidObjectState",
            "The operation is not valid for the object's storage class",
            "ObjectArchived",
        ),
    ],
)
def test_a_permanent_refusal_of_the_get_is_answered_unreadable(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, code: str, message: str, answer: str
) -> None:
    event = upload(s3, KEY, MARKET, sequencer="0A")
    refuse_get(monkeypatch, code, message)

    [record] = lambda_handler(event, LocalContext())["records"]

    assert record["status"] == "unreadable"
    result = read_result(s3, RESULT)
    assert result["error"] == {"code": answer, "message": message}
    assert result["source"]["etag"] == event["Records"][0]["s3"]["object"]["eTag"]
    assert result["source"]["size"] is None


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("InvalidRequest", "some other malformed request", 400),
        ("AccessDenied", "Access Denied", 403),
        ("SlowDown", "Please reduce your request rate.", 503),
        ("InternalError", "We encountered an internal error.", 500),
    ],
)
def test_other_errors_of_the_get_stay_retried(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, code: str, message: str, status: int
) -> None:
    event = upload(s3, KEY, MARKET, sequencer="0A")
    refuse_get(monkeypatch, code, message, status)

    with pytest.raises(RecordsFailed, match=code):
        lambda_handler(event, LocalContext())
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_a_batch_task_of_an_archived_input_succeeds_saying_unreadable(s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=MARKET, StorageClass="DEEP_ARCHIVE")

    [result] = lambda_handler(batch_event(KEY), LocalContext())["results"]

    assert result["resultCode"] == "Succeeded"
    assert result["resultString"] == f"unreadable (ObjectArchived): {RESULT}"


def test_a_promotion_to_an_archived_version_is_answered_unreadable(versioned: S3Client) -> None:
    s3 = versioned
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=MARKET, StorageClass="GLACIER")
    newer = upload(s3, KEY, b'{"products": [{"price": 1}]}', sequencer="0B")
    lambda_handler(newer, LocalContext())
    version = newer["Records"][0]["s3"]["object"]["versionId"]
    s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=version)

    [record] = lambda_handler(
        delete_event(BUCKET, KEY, sequencer="0C", version_id=version), LocalContext()
    )["records"]

    assert record["status"] == "unreadable"
    assert read_result(s3, RESULT)["error"]["code"] == "ObjectArchived"


# --- 5. nothing vanishes --------------------------------------------------------------------------


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": KEY, "eTag": "abc"}},
    }
    for path, value in changes.items():
        target = record
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return record


MALFORMED: dict[str, dict[str, Any]] = {
    "no s3": {"Records": [_record(s3=None)]},
    "no key": {"Records": [_record(s3__object__key=None)]},
    "no eventName": {"Records": [_record(eventName=None)]},
    "key a number": {"Records": [_record(s3__object__key=5)]},
    "bucket a list": {"Records": [_record(s3__bucket=[BUCKET])]},
    "sequencer a number": {"Records": [_record(s3__object__sequencer=10)]},
    "eventbridge without object": {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "id": "e1",
        "detail": {"bucket": {"name": BUCKET}},
    },
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("wrap", ["sqs", "sns"])
def test_a_malformed_message_is_logged_counted_and_kept_in_the_dlq_at_once(
    s3: S3Client,
    *,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    case: str,
    wrap: str,
) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="market-totals-dlq")["QueueUrl"]
    monkeypatch.setenv("MALFORMED_QUEUE_URL", dlq)
    message = MALFORMED[case] if wrap == "sqs" else sns_envelope(MALFORMED[case])
    body = json.dumps(message)

    answer = lambda_handler(sqs_event(body), LocalContext())

    assert answer == {"batchItemFailures": []}  # no pointless redeliveries
    [kept] = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert kept["Body"] == body
    assert kept["MessageAttributes"]["market-totals-origin"]["StringValue"] == "m0"
    problem = kept["MessageAttributes"]["market-totals-problem"]["StringValue"]
    [logged] = [line for line in log_lines(log_stream) if line["message"].startswith("malformed")]
    assert logged["level"] == "ERROR"
    assert logged["message_id"] == "m0"
    assert logged["problem"] == problem
    assert metrics_of(capsys.readouterr().out)["MessagesMalformed"] == [1.0]


def test_without_a_malformed_queue_a_malformed_message_is_a_batch_item_failure(
    s3: S3Client, log_stream: io.StringIO
) -> None:
    good = upload(s3, KEY, MARKET, sequencer="0A")
    answer = lambda_handler(
        sqs_event(json.dumps(MALFORMED["no key"]), json.dumps(good)), LocalContext()
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert read_result(s3, RESULT)["status"] == "ok"  # its batch-mate goes on
    [logged] = [line for line in log_lines(log_stream) if line["message"].startswith("malformed")]
    assert logged["problem"] == "an S3 notification record without 's3.object.key'"


def test_a_malformed_message_whose_copy_fails_is_a_batch_item_failure(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "MALFORMED_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing"
    )

    answer = lambda_handler(sqs_event(json.dumps(MALFORMED["no s3"])), LocalContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_a_malformed_direct_record_raises_after_its_neighbours_are_done(
    s3: S3Client, log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    good = upload(s3, KEY, MARKET, sequencer="0A")["Records"][0]
    event = {"Records": [_record(s3__object__key=None), good]}

    with pytest.raises(MalformedEvent, match=r"Records\[0\]: .*without 's3.object.key'"):
        lambda_handler(event, LocalContext())

    assert read_result(s3, RESULT)["status"] == "ok"
    [logged] = [line for line in log_lines(log_stream) if line["message"].startswith("malformed")]
    assert (logged["level"], logged["message_id"]) == ("ERROR", "Records[0]")
    assert metrics_of(capsys.readouterr().out)["MessagesMalformed"] == [1.0]


def test_a_malformed_direct_event_is_kept_and_answered_where_a_queue_is_named(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="market-totals-failures")["QueueUrl"]
    monkeypatch.setenv("MALFORMED_QUEUE_URL", queue)

    answer = lambda_handler(MALFORMED["eventbridge without object"], LocalContext())

    assert answer == {"records": []}
    [kept] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(kept["Body"]) == MALFORMED["eventbridge without object"]


@pytest.mark.parametrize("event", [[], ["Records"], "Records", None, 3, 2.5, True])
def test_an_event_that_is_not_an_object_is_an_unknown_event(event: Any) -> None:
    with pytest.raises(UnknownEvent, match="not a JSON object"):
        lambda_handler(event, LocalContext())


def test_a_malformed_batch_task_fails_alone(s3: S3Client, log_stream: io.StringIO) -> None:
    upload(s3, KEY, MARKET)
    job = batch_event(KEY)
    good = job["tasks"][0]
    job["tasks"] = [
        {"s3Key": "x/market_infos.json", "s3Bucket": BUCKET},  # no taskId: cannot be answered
        {"taskId": "t-no-key", "s3Bucket": BUCKET},
        {"taskId": "t-bad-version", "s3Key": KEY, "s3Bucket": BUCKET, "s3VersionId": 7},
        good,
    ]

    results = lambda_handler(job, LocalContext())["results"]

    assert [(r["taskId"], r["resultCode"]) for r in results] == [
        ("t-no-key", "PermanentFailure"),
        ("t-bad-version", "PermanentFailure"),
        (good["taskId"], "Succeeded"),
    ]
    assert results[0]["resultString"] == "malformed: a Batch Operations task without 's3Key'"
    malformed = [line for line in log_lines(log_stream) if line["message"].startswith("malformed")]
    assert [line["message_id"] for line in malformed] == ["tasks[0]", "t-no-key", "t-bad-version"]


def test_a_batch_job_without_an_invocation_id_is_an_unknown_event(s3: S3Client) -> None:
    job = batch_event(KEY)
    del job["invocationId"]

    with pytest.raises(UnknownEvent, match="invocationId"):
        lambda_handler(job, LocalContext())


# --- 5d. bounded work per invocation --------------------------------------------------------------


def _markets(s3: S3Client, count: int) -> list[dict[str, Any]]:
    return [
        upload(s3, f"m{index}/market_infos.json", MARKET, sequencer="0A")["Records"][0]
        for index in range(count)
    ]


def test_sqs_messages_not_started_in_time_are_handed_back(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _markets(s3, 3)
    event = sqs_event(*(json.dumps({"Records": [record]}) for record in records))

    answer = lambda_handler(event, ShrinkingContext(budget=2))

    # m0: its message check and its record's; m1 finds too little time at its message check.
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert read_result(s3, "m0/total_price.json")["status"] == "ok"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="m1/")["KeyCount"] == 1  # no result
    assert metrics_of(capsys.readouterr().out)["WorkDeferred"] == [1.0, 1.0]


def test_one_message_of_many_records_is_bounded_and_comes_back_whole(
    s3: S3Client, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    records = _markets(s3, 50)
    event = sqs_event(json.dumps({"Records": records}))

    answer = lambda_handler(event, ShrinkingContext(budget=4))

    # One message check, three records done, the other 47 never started: the message is
    # handed back whole (a partial batch response names whole messages).
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert len(requests) == 3 * 4  # a fresh record's 4 requests, three times
    assert read_result(s3, "m2/total_price.json")["status"] == "ok"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="m3/")["KeyCount"] == 1


def test_batch_tasks_not_started_in_time_are_a_temporary_failure(s3: S3Client) -> None:
    upload(s3, KEY, MARKET)
    job = batch_event(KEY)
    job["tasks"] = [dict(job["tasks"][0], taskId=f"t{index}") for index in range(3)]

    results = lambda_handler(job, ShrinkingContext(budget=1))["results"]

    assert [r["resultCode"] for r in results] == [
        "Succeeded",
        "TemporaryFailure",
        "TemporaryFailure",
    ]
    assert "time ran short" in results[1]["resultString"]


def test_a_direct_event_raises_after_writing_the_records_done_in_time(s3: S3Client) -> None:
    event = {"Records": _markets(s3, 3)}

    with pytest.raises(RecordsFailed, match="2 of 3 record\\(s\\) not started"):
        lambda_handler(event, ShrinkingContext(budget=1))

    assert read_result(s3, "m0/total_price.json")["status"] == "ok"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="m1/")["KeyCount"] == 1


# --- make run and the backfill act on their bucket only ------------------------------------------


def test_make_run_sets_source_buckets_to_the_buckets_it_works_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from localrun.invoke import source_buckets

    with source_buckets({BUCKET, "arn:aws:s3:::x"}):
        assert os.environ["SOURCE_BUCKETS"] == BUCKET
    assert "SOURCE_BUCKETS" not in os.environ
    monkeypatch.setenv("SOURCE_BUCKETS", "mine")
    with source_buckets({BUCKET}):
        assert os.environ["SOURCE_BUCKETS"] == "mine"  # the shell's setting wins


def test_the_backfill_acts_on_its_bucket_and_refuses_one_the_setting_leaves_out() -> None:
    from handler.rules.settings import Settings
    from localrun.backfill import CliError, own_bucket

    assert own_bucket(Settings(), BUCKET).source_buckets == frozenset({BUCKET})
    named = Settings(source_buckets=frozenset({BUCKET}))
    assert own_bucket(named, BUCKET) is named
    with pytest.raises(CliError, match="SOURCE_BUCKETS does not name other-bucket"):
        own_bucket(named, "other-bucket")
