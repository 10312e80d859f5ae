"""scripts/backfill.py: the local backfill on moto, and the S3 Batch Operations job's request.

The local backfill runs through ``main([...])`` against the ``s3`` fixture (moto in-process) or
``--embedded-demo`` (moto as a server), so what is tested is what a user runs. moto does not run
Batch Operations jobs, so the job's side is tested by its request: botocore's ``Stubber`` on the
s3control, sts and cloudformation clients checks every parameter, and the manifest it names is
a real object in moto.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from handler import events, storage
from handler.flows import created
from handler.outcomes import Outcome, Reason
from handler.rules.settings import Settings
from localrun import backfill
from tests.support import BUCKET, load_event, read_result, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.timeout(60)

ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:market-totals-dev-Function-AbC"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/market-totals-dev-BatchOperationsRole-XyZ"
JOB_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TOKEN = "5a0c9e4e-1f0b-4c4e-9d55-3f2d7c1b8a90"
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
MANIFEST_KEY = f"batch-manifests/20261121T120000Z-{TOKEN[:8]}.csv"


def job_flags() -> list[str]:
    """A ``batch-job`` command line that names the deployment itself (no stack to read)."""
    return ["batch-job", "--bucket", BUCKET, "--function-arn", FUNCTION_ARN, "--role-arn", ROLE_ARN]


def market(*prices: str) -> bytes:
    """A market_infos.json with these prices, written as text so they stay exact."""
    products = ", ".join(f'{{"name": "p{n}", "price": {price}}}' for n, price in enumerate(prices))
    return f'{{"products": [{products}]}}'.encode()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """``main(argv)``: its exit status, its summary (stdout's last line) and its stderr."""
    code = backfill.main(list(argv))
    out, err = capsys.readouterr()
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    return code, json.loads(last), err


def summary(
    listed: int,
    *,
    ok: int = 0,
    invalid: int = 0,
    skipped: dict[str, int] | None = None,
    failed: int = 0,
    ignored: int = 0,
    withdrawn: int = 0,
) -> dict[str, Any]:
    reasons = skipped or {}
    return {
        "listed": listed,
        "ok": ok,
        "invalid": invalid,
        "skipped": sum(reasons.values()),
        "failed": failed,
        "skipped_reasons": reasons,
        "ignored": ignored,
        "withdrawn": withdrawn,
    }


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1, err
    assert err.endswith("\n")
    assert err.startswith("backfill.py")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


# --- the local backfill ---------------------------------------------------------------------


def test_mixed_bucket_is_totalled_and_counted(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a/market_infos.json", Body=market("1.10", "2.20"))
    s3.put_object(Bucket=BUCKET, Key="b/market_infos.json", Body=b'{"products": [')
    s3.put_object(Bucket=BUCKET, Key="c/notes.txt", Body=b"not an input")
    s3.put_object(Bucket=BUCKET, Key="d/market_infos.json.bak", Body=market("9"))

    code, result, err = run(capsys, "--bucket", BUCKET)

    assert (code, err) == (0, "")
    assert result == summary(listed=2, ok=1, invalid=1, ignored=2)
    assert str(read_result(s3, "a/total_price.json")["total"]) == "3.30"
    assert read_result(s3, "b/total_price.json")["status"] == "invalid"
    # Not inputs: nothing was written for them.
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="c/")["KeyCount"] == 1
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="d/")["KeyCount"] == 1


def test_prefix_limits_the_backfill(s3: S3Client, capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("in/x/market_infos.json", "in/y/market_infos.json", "out/market_infos.json"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=market("1"))

    code, result, _ = run(capsys, "--bucket", BUCKET, "--prefix", "in/")

    assert code == 0
    assert result == summary(listed=2, ok=2)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")["KeyCount"] == 1


def test_a_rerun_costs_one_head_per_current_input(
    s3: S3Client, s3_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = 6
    for n in range(inputs):
        s3.put_object(Bucket=BUCKET, Key=f"m{n}/market_infos.json", Body=market(str(n)))
    assert run(capsys, "--bucket", BUCKET)[:2] == (0, summary(listed=inputs, ok=inputs, ignored=0))
    s3_calls.clear()

    code, result, _ = run(capsys, "--bucket", BUCKET)

    assert code == 0
    # The results are listed too (ignored), but nothing is read or written again.
    assert result == summary(listed=inputs, skipped={"ResultUpToDate": inputs}, ignored=inputs)
    assert Counter(s3_calls) == {"ListObjectsV2": 1, "HeadObject": inputs}


def test_a_live_result_for_the_current_object_is_left_alone(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    event = upload(s3, "live/market_infos.json", market("5"), sequencer="0055AED6DCD90281E5")
    live = created.process(s3, events.object_events(event)[0], Settings())
    assert live.status == "ok"
    before = s3.get_object(Bucket=BUCKET, Key="live/total_price.json")

    code, result, _ = run(capsys, "--bucket", BUCKET)

    after = s3.get_object(Bucket=BUCKET, Key="live/total_price.json")
    assert code == 0
    assert result == summary(listed=1, skipped={"ResultUpToDate": 1}, ignored=1)
    assert after["ETag"] == before["ETag"]
    assert after["Body"].read() == before["Body"].read()


def test_an_object_replaced_after_the_listing_is_never_rolled_back(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The listing saw v1; before the backfill reads it, v2 is uploaded and its live event
    writes v2's total. The backfill's read of v1 (If-Match on the listed ETag) finds v2: it
    skips, and v2's result stands."""
    key = "race/market_infos.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=market("1"))
    real_process = created.process
    raced: list[str] = []

    def v2_lands_first(client: S3Client, event: events.ObjectEvent, settings: Settings) -> Outcome:
        if event.key == key and not raced:
            raced.append(key)
            live = upload(s3, key, market("2"), sequencer="00AA")
            real_process(client, events.object_events(live)[0], settings)
        return real_process(client, event, settings)

    monkeypatch.setattr(created, "process", v2_lands_first)

    code, result, _ = run(capsys, "--bucket", BUCKET)

    assert code == 0
    assert result == summary(listed=1, skipped={Reason.SOURCE_CHANGED: 1})
    assert str(read_result(s3, "race/total_price.json")["total"]) == "2"


def test_a_result_of_an_older_object_is_brought_up_to_date(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live result from v1, then v2 uploaded while no trigger was there: the backfill
    totals v2 (the current object), as the ordering rules allow."""
    key = "stale/market_infos.json"
    event = upload(s3, key, market("1"), sequencer="0010")
    created.process(s3, events.object_events(event)[0], Settings())
    s3.put_object(Bucket=BUCKET, Key=key, Body=market("7"))

    code, result, _ = run(capsys, "--bucket", BUCKET)

    assert code == 0
    assert result == summary(listed=1, ok=1, ignored=1)
    assert str(read_result(s3, "stale/total_price.json")["total"]) == "7"


def test_many_objects_with_many_workers_all_get_their_own_total(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    count = 200
    for n in range(count):
        s3.put_object(Bucket=BUCKET, Key=f"m{n:03d}/market_infos.json", Body=market(str(n), "0.5"))

    code, result, _ = run(capsys, "--bucket", BUCKET, "--workers", "16")

    assert code == 0
    assert result == summary(listed=count, ok=count)
    for n in range(count):
        document = read_result(s3, f"m{n:03d}/total_price.json")
        assert str(document["total"]) == f"{n}.5"
        assert document["source"]["key"] == f"m{n:03d}/market_infos.json"


def test_failures_are_counted_listed_and_exit_1(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("good", "bad", "fine"):
        s3.put_object(Bucket=BUCKET, Key=f"{name}/market_infos.json", Body=market("1"))
    real_process = created.process

    def flaky(client: S3Client, event: events.ObjectEvent, settings: Settings) -> Outcome:
        if event.key.startswith("bad/"):
            raise RuntimeError("throttled\nagain")
        return real_process(client, event, settings)

    monkeypatch.setattr(created, "process", flaky)

    code, result, err = run(capsys, "--bucket", BUCKET)

    assert code == 1
    assert result == summary(listed=3, ok=2, failed=1)
    assert err == f"failed: {BUCKET}/bad/market_infos.json: RuntimeError: throttled again\n"


def test_dry_run_names_the_inputs_and_reads_or_writes_nothing(
    s3: S3Client, s3_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a/market_infos.json", Body=market("1"))
    s3.put_object(Bucket=BUCKET, Key="a b/märkte/market_infos.json", Body=market("1"))
    s3.put_object(Bucket=BUCKET, Key="a/other.txt", Body=b"x")

    code = backfill.main(["--bucket", BUCKET, "--dry-run"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"s3://{BUCKET}/a b/märkte/market_infos.json",
        f"s3://{BUCKET}/a/market_infos.json",
        json.dumps({"listed": 2, "ignored": 1, "orphans": 0, "dry_run": True}),
    ]
    assert s3_calls == ["ListObjectsV2"]
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 3


# --- reconciling both ways: orphan results ---------------------------------------------------


def orphaned_bucket(s3: S3Client, capsys: pytest.CaptureFixture[str]) -> None:
    """Four markets totalled; then two inputs deleted behind the function's back (their
    results are orphans), one of them in a folder that still has a subfolder with an input."""
    for key in ("a/market_infos.json", "b/market_infos.json", "c/market_infos.json"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=market("1"))
    s3.put_object(Bucket=BUCKET, Key="c/sub/market_infos.json", Body=market("2"))
    assert run(capsys, "--bucket", BUCKET)[:2] == (0, summary(listed=4, ok=4))
    s3.delete_object(Bucket=BUCKET, Key="b/market_infos.json")
    s3.delete_object(Bucket=BUCKET, Key="c/market_infos.json")


def test_orphan_results_are_removed_and_counted(
    s3: S3Client, capsys: pytest.CaptureFixture[str], s3_calls: list[str]
) -> None:
    orphaned_bucket(s3, capsys)
    s3_calls.clear()

    code, result, err = run(capsys, "--bucket", BUCKET)

    assert (code, err) == (0, "")
    assert result == summary(listed=2, skipped={"ResultUpToDate": 2}, ignored=4, withdrawn=2)
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert left == {
        "a/market_infos.json",
        "a/total_price.json",
        "c/sub/market_infos.json",
        "c/sub/total_price.json",
    }
    # A HEAD per current input; a GET, a HEAD, a conditional DELETE and (contract r4) the look
    # at the key after it, per orphan.
    assert Counter(s3_calls) == {
        "ListObjectsV2": 1,
        "HeadObject": 2 + 2 + 2,
        "GetObject": 2,
        "DeleteObject": 2,
    }


def test_dry_run_lists_orphan_candidates_and_removes_nothing(
    s3: S3Client, capsys: pytest.CaptureFixture[str], s3_calls: list[str]
) -> None:
    orphaned_bucket(s3, capsys)
    s3_calls.clear()

    assert backfill.main(["--bucket", BUCKET, "--dry-run"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert f"s3://{BUCKET}/b/total_price.json (orphan?)" in out
    assert f"s3://{BUCKET}/c/total_price.json (orphan?)" in out
    assert json.loads(out[-1]) == {"listed": 2, "ignored": 4, "orphans": 2, "dry_run": True}
    assert s3_calls == ["ListObjectsV2"]


def test_an_orphan_whose_input_came_back_is_kept(
    s3: S3Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    orphaned_bucket(s3, capsys)
    # Uploaded again after the listing passed b/ (and before it leaves the folder, which makes
    # b/'s result a candidate): the result's input exists after all.
    listing = backfill.list_objects

    def listing_then_upload(client: S3Client, bucket: str, prefix: str) -> Any:
        for key, etag in listing(client, bucket, prefix):
            if key == "c/sub/market_infos.json":  # the first key after b/
                s3.put_object(Bucket=BUCKET, Key="b/market_infos.json", Body=market("1"))
            yield key, etag

    monkeypatch.setattr(backfill, "list_objects", listing_then_upload)
    code, result, _ = run(capsys, "--bucket", BUCKET, "--workers", "1")

    assert code == 0
    assert result["withdrawn"] == 1
    assert result["skipped_reasons"]["KeyHasCurrentObject"] == 1
    assert read_result(s3, "b/total_price.json")["status"] == "ok"


def test_a_foreign_object_named_like_a_result_is_left_alone(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="x/total_price.json", Body=b"not ours")
    s3.put_object(Bucket=BUCKET, Key="y/total_price.json", Body=b'{"source": {"key": 1}}')

    code, result, _ = run(capsys, "--bucket", BUCKET)

    assert code == 0
    assert result == summary(listed=0, skipped={"NoResultToWithdraw": 2}, ignored=2)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 2


def test_no_orphans_are_looked_for_when_results_go_to_another_bucket(
    s3: S3Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key="b/total_price.json", Body=b"{}")
    s3.create_bucket(Bucket="results")
    monkeypatch.setenv("RESULT_BUCKET", "results")

    assert run(capsys, "--bucket", BUCKET)[:2] == (0, summary(listed=0, ignored=1))


def test_embedded_demo_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    code, result, err = run(capsys, "--embedded-demo", "--workers", "4")

    assert code == 0
    # events/objects/ holds three inputs; five generated ones, one invalid, one not an input.
    assert result == summary(listed=9, ok=8, invalid=1, ignored=1)
    assert "embedded S3 (moto) at http://127.0.0.1:" in err
    assert f"s3://{backfill.DEMO_BUCKET}/market a/märkte/total_price.json: ok" in err
    assert "generated/broken/total_price.json: invalid InvalidJSON" in err


@pytest.mark.parametrize(
    "parser", [backfill.local_parser, backfill.batch_parser], ids=["local", "batch-job"]
)
def test_help_documents_every_flag_with_its_default(
    parser: Callable[[], backfill.OneLineParser],
) -> None:
    built = parser()
    text = built.format_help()
    for action in built._actions:
        if action.dest == "help":
            continue
        assert all(option in text for option in action.option_strings)
        assert "(default: " in (action.help or ""), action.option_strings


def test_help_is_printed_for_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, flag in (
        (["--help"], "--workers"),
        (["batch-job", "--help"], "--inventory-manifest"),
    ):
        with pytest.raises(SystemExit) as exited:
            backfill.main(argv)
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: backfill.py")
        assert flag in out


# --- errors: one line each, no traceback ------------------------------------------------------


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere botocore looks (no network is needed to find that out)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # The default session caches the credentials an earlier test resolved.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize(
    "argv",
    [
        ["--bucket", BUCKET],
        ["batch-job", "--bucket", BUCKET, "--function-arn", FUNCTION_ARN, "--role-arn", ROLE_ARN],
    ],
    ids=["local", "batch-job"],
)
def test_missing_credentials_is_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert backfill.main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, "no AWS credentials found", "AWS_PROFILE")


def test_a_bucket_that_does_not_exist_is_one_line(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backfill.main(["--bucket", "no-such-bucket-here"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(err, "s3://no-such-bucket-here/", "bucket does not exist")


def test_access_denied_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    stub = Stubber(client)
    stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    stub.activate()
    monkeypatch.setattr(storage, "new_client", lambda: client)

    assert backfill.main(["--bucket", BUCKET, "--prefix", "p/"]) == 2
    assert_one_line_error(
        capsys.readouterr().err, f"listing s3://{BUCKET}/p/", "access denied (AccessDenied"
    )


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        ([], {}, "--bucket is required"),
        (["--workers", "0"], {}, "must be 1 to 128"),
        (["--workers", "many"], {}, "not a whole number"),
        (["--unknown"], {}, "unrecognized arguments"),
        (["--bucket", BUCKET], {"INPUT_SUFFIX": "price.json"}, "bad setting: RESULT_NAME"),
        (["batch-job", "--bucket", BUCKET], {}, "--function-arn, --role-arn required"),
        (["batch-job", "--timeout", "-1"], {}, "must be zero or more"),
        (
            [*job_flags(), "--account-id", ACCOUNT, "--inventory-manifest", "s3://b/"],
            {},
            "--inventory-manifest must be s3://bucket/path/manifest.json",
        ),
        (
            [
                "batch-job",
                "--bucket",
                BUCKET,
                "--function-arn",
                FUNCTION_ARN,
                "--role-arn",
                ROLE_ARN,
                "--inventory-manifest",
                "s3://b/m.json",
                "--prefix",
                "p/",
            ],
            {},
            "--prefix filters a listing",
        ),
    ],
)
def test_usage_and_setting_errors_are_one_line(
    argv: list[str],
    env: dict[str, str],
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = backfill.main(argv)
    except SystemExit as exited:  # argparse's own errors
        code = int(str(exited.code))
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, fragment)


# --- S3 Batch Operations --------------------------------------------------------------------


@pytest.fixture
def control(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    """Stubbed s3control, sts and cloudformation clients, handed out by ``aws_client``; a fixed
    clock and token, so that the manifest's name is known. Every stubbed call must be made."""
    clients = {
        name: boto3.client(name, region_name="us-east-1")
        for name in ("s3control", "sts", "cloudformation")
    }
    stubs = {name: Stubber(client) for name, client in clients.items()}
    monkeypatch.setattr(backfill, "aws_client", lambda name: clients[name])
    monkeypatch.setattr(backfill, "utc_now", lambda: NOW)
    monkeypatch.setattr(backfill, "new_token", lambda: TOKEN)
    for stub in stubs.values():
        stub.activate()
    yield stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def expected_job(manifest: Any, **overrides: Any) -> dict[str, Any]:
    """CreateJob's parameters for a job made with ``job_flags()`` (``manifest`` may be ANY)."""
    request: dict[str, Any] = {
        "AccountId": ACCOUNT,
        "ConfirmationRequired": False,
        "Operation": {
            "LambdaInvoke": {"FunctionArn": FUNCTION_ARN, "InvocationSchemaVersion": "2.0"}
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{BUCKET}",
            "Prefix": "batch-reports",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "AllTasks",
        },
        "ClientRequestToken": TOKEN,
        "Manifest": manifest,
        "Description": ANY,
        "Priority": 10,
        "RoleArn": ROLE_ARN,
    }
    request.update(overrides)
    return request


AWKWARD_KEYS = [
    "with space/market_infos.json",
    "plus+sign/market_infos.json",
    "100%/market_infos.json",
    "märkte/日本/market_infos.json",
    'comma,"quote"/market_infos.json',
    "plain/market_infos.json",
]


def test_batch_job_from_a_listing(
    s3: S3Client, control: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    for key in AWKWARD_KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=market("1"))
    s3.put_object(Bucket=BUCKET, Key="plain/total_price.json", Body=b"{}")  # not an input
    control["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "market-totals-dev",
                    "CreationTime": NOW,
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": "BucketName", "OutputValue": BUCKET},
                        {"OutputKey": "FunctionArn", "OutputValue": FUNCTION_ARN},
                        {"OutputKey": "BatchOperationsRoleArn", "OutputValue": ROLE_ARN},
                    ],
                }
            ]
        },
        {"StackName": "market-totals-dev"},
    )
    control["sts"].add_response(
        "get_caller_identity",
        {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/dev"},
        {},
    )
    # The rows S3 Batch Operations needs: keys URL-encoded, in the listing's order.
    encoded = {
        "with space/market_infos.json": "with%20space/market_infos.json",
        "plus+sign/market_infos.json": "plus%2Bsign/market_infos.json",
        "100%/market_infos.json": "100%25/market_infos.json",
        "märkte/日本/market_infos.json": "m%C3%A4rkte/%E6%97%A5%E6%9C%AC/market_infos.json",
        'comma,"quote"/market_infos.json': "comma%2C%22quote%22/market_infos.json",
        "plain/market_infos.json": "plain/market_infos.json",
    }
    csv = "".join(f"{BUCKET},{encoded[key]}\n" for key in sorted(AWKWARD_KEYS)).encode()
    manifest = {
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {
            "ObjectArn": f"arn:aws:s3:::{BUCKET}/{MANIFEST_KEY}",
            "ETag": hashlib.md5(csv).hexdigest(),
        },
    }
    control["s3control"].add_response("create_job", {"JobId": JOB_ID}, expected_job(manifest))

    code = backfill.main(["batch-job", "--stack", "market-totals-dev"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert s3.get_object(Bucket=BUCKET, Key=MANIFEST_KEY)["Body"].read() == csv
    assert out.splitlines() == [
        f"created S3 Batch Operations job {JOB_ID} over 6 keys in s3://{BUCKET}/{MANIFEST_KEY}",
        f"check it: aws s3control describe-job --account-id {ACCOUNT} --job-id {JOB_ID} "
        "--region us-east-1",
        f"completion report: s3://{BUCKET}/batch-reports/job-{JOB_ID}/",
    ]


def test_manifest_keys_decode_to_the_keys_in_the_function() -> None:
    """What the function makes of each row: a Batch Operations task carries the manifest's key
    as written, and ``sources`` decodes it (Powertools' ``unquote_plus``)."""
    for key in AWKWARD_KEYS:
        row = backfill.manifest_row(BUCKET, key).decode()
        assert row.count(",") == 1
        assert row.count("\n") == 1
        assert row.endswith("\n")
        event = load_event("batch-operations-2.0.json")
        event["tasks"][0]["s3Key"] = row.rstrip("\n").split(",", 1)[1]
        assert [item.key for item in events.object_events(event)] == [key]


def test_batch_job_from_an_inventory_report_with_confirmation(
    s3: S3Client, control: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = "batch-manifests/inventory/market-totals/2026-11-21T01-00Z/manifest.json"
    put = s3.put_object(Bucket=BUCKET, Key=inventory, Body=b'{"files": []}')
    manifest = {
        "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
        "Location": {
            "ObjectArn": f"arn:aws:s3:::{BUCKET}/{inventory}",
            "ETag": put["ETag"].strip('"'),
        },
    }
    expected = expected_job(
        manifest, ConfirmationRequired=True, Priority=50, Description="weekly catch-up"
    )
    control["s3control"].add_response("create_job", {"JobId": JOB_ID}, expected)

    code = backfill.main(
        [
            *job_flags(),
            "--inventory-manifest",
            f"s3://{BUCKET}/{inventory}",
            "--account-id",
            ACCOUNT,  # no STS call
            "--confirm",
            "--priority",
            "50",
            "--description",
            "weekly catch-up",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert f"job {JOB_ID} over s3://{BUCKET}/{inventory}" in out
    assert "--requested-job-status Ready" in out


def test_an_inventory_manifest_that_does_not_exist_is_one_line(
    s3: S3Client, control: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"s3://{BUCKET}/batch-manifests/nothing/manifest.json"
    code = backfill.main([*job_flags(), "--account-id", ACCOUNT, "--inventory-manifest", uri])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, f"inventory manifest {uri} does not exist")


def test_batch_job_over_no_inputs_creates_no_job(
    s3: S3Client, control: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="notes.txt", Body=b"x")
    assert backfill.main([*job_flags(), "--account-id", ACCOUNT]) == 0
    assert "no job created" in capsys.readouterr().out
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="batch-manifests/")["KeyCount"] == 0


def test_create_job_refused_is_one_line(
    s3: S3Client, control: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a/market_infos.json", Body=market("1"))
    control["s3control"].add_client_error(
        "create_job", "AccessDenied", "not authorized to perform: iam:PassRole", 403
    )
    assert backfill.main([*job_flags(), "--account-id", ACCOUNT]) == 2
    assert_one_line_error(
        capsys.readouterr().err, "creating the Batch Operations job: access denied", "PassRole"
    )


def describe(status: str, succeeded: int = 0, failed: int = 0, total: int = 3) -> dict[str, Any]:
    return {
        "Job": {
            "JobId": JOB_ID,
            "Status": status,
            "ProgressSummary": {
                "TotalNumberOfTasks": total,
                "NumberOfTasksSucceeded": succeeded,
                "NumberOfTasksFailed": failed,
            },
        }
    }


@pytest.mark.parametrize(
    ("final", "code"),
    [(describe("Complete", 3), 0), (describe("Complete", 2, 1), 1), (describe("Failed"), 1)],
    ids=["complete", "some-tasks-failed", "job-failed"],
)
def test_wait_polls_until_the_job_ends(
    s3: S3Client,
    control: dict[str, Stubber],
    capsys: pytest.CaptureFixture[str],
    final: dict[str, Any],
    code: int,
) -> None:
    for name in ("a", "b", "c"):
        s3.put_object(Bucket=BUCKET, Key=f"{name}/market_infos.json", Body=market("1"))
    control["s3control"].add_response("create_job", {"JobId": JOB_ID}, expected_job(ANY))
    params = {"AccountId": ACCOUNT, "JobId": JOB_ID}
    for response in (describe("Preparing"), describe("Active", 1), describe("Active", 1), final):
        control["s3control"].add_response("describe_job", response, params)

    exit_code = backfill.main(
        [*job_flags(), "--account-id", ACCOUNT, "--wait", "--poll-interval", "0"]
    )

    out, err = capsys.readouterr()
    assert exit_code == code
    job = final["Job"]
    progress = job["ProgressSummary"]
    done = progress["NumberOfTasksSucceeded"] + progress["NumberOfTasksFailed"]
    assert out.splitlines()[-1] == (
        f"job {JOB_ID} {job['Status']}: {done}/3 tasks done "
        f"({progress['NumberOfTasksSucceeded']} succeeded, {progress['NumberOfTasksFailed']} "
        f"failed); report s3://{BUCKET}/batch-reports/job-{JOB_ID}/"
    )
    # One line per change of progress, not per poll.
    assert err.splitlines()[:2] == [
        f"job {JOB_ID}: Preparing: 0/3 tasks done (0 succeeded, 0 failed)",
        f"job {JOB_ID}: Active: 1/3 tasks done (1 succeeded, 0 failed)",
    ]
    assert len(err.splitlines()) == 3


def test_wait_is_bounded(
    s3: S3Client, control: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="a/market_infos.json", Body=market("1"))
    control["s3control"].add_response("create_job", {"JobId": JOB_ID}, expected_job(ANY))
    control["s3control"].add_response("describe_job", describe("Active", 1))

    code = backfill.main([*job_flags(), "--account-id", ACCOUNT, "--wait", "--timeout", "0"])

    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"backfill.py: job {JOB_ID} still running after 0 s"
    )
