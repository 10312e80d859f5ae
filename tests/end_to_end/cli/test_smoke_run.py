"""``make run``'s driver (scripts/local_invoke.py), as a newcomer uses it: the embedded S3, every
sample event, a file of your own, a SAM-generated event, every flag, and every error as one line.
stdout carries the result objects only; everything else goes to stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from localrun.invoke import embedded_s3, main, parser
from tests.support import EVENTS

ROOT = Path(__file__).resolve().parents[3]

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_s3 import S3Client


def results(out: str) -> list[dict[str, Any]]:
    """stdout is JSON Lines of result objects, nothing else."""
    return [json.loads(line, parse_float=Decimal) for line in out.splitlines()]


def test_make_run_prints_an_ok_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    captured = capsys.readouterr()
    [result] = results(captured.out)
    assert (result["status"], result["total"]) == ("ok", 400)
    assert "uploaded events/objects/market_a/market_infos.json" in captured.err
    assert "result object s3://market-totals-demo/market_a/total_price.json" in captured.err
    assert '"level"' not in captured.err  # INFO logs only with --verbose


def test_verbose_adds_the_function_logs_and_metrics_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--verbose"]) == 0
    captured = capsys.readouterr()
    assert len(results(captured.out)) == 1
    assert '"message":"record processed"' in captured.err
    assert '"CloudWatchMetrics"' in captured.err


def test_make_run_with_a_file_of_your_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "mine.json"
    own.write_text('{"products": [{"price": 19.99}, {"price": 0.01}]}')

    assert main(["--file", str(own), "--key", "shop/market_infos.json"]) == 0

    captured = capsys.readouterr()
    assert "result object s3://market-totals-demo/shop/total_price.json" in captured.err
    assert '"total": 20.00,' in captured.out  # exact, scale kept: printed as stored


def test_make_run_with_another_event_and_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--event", str(EVENTS / "put-many.json"), "--bucket", "another-bucket"]) == 0
    captured = capsys.readouterr()
    assert {r["source"]["bucket"] for r in results(captured.out)} == {"another-bucket"}
    assert "s3://another-bucket/market_b/total_price.json" in captured.err
    # A skip explains itself, naming the suffix a key needs.
    assert "NotAnInputKey: the key does not end with 'market_infos.json'" in captured.err


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("put.json", 1),
        ("put-many.json", 2),
        ("put-encoded-key.json", 1),
        ("sqs-s3.json", 2),
        ("sqs-sns-s3.json", 1),
        ("eventbridge-object-created.json", 1),
        ("batch-operations-1.0.json", 1),
        ("batch-operations-2.0.json", 1),
    ],
)
def test_every_sample_event_totals_its_objects(
    name: str, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--event", str(EVENTS / name)]) == 0
    found = results(capsys.readouterr().out)
    assert [r["status"] for r in found] == ["ok"] * count
    assert found[0]["total"] == 400  # market_a's, in every sample


def test_an_event_whose_etag_does_not_match_is_rewritten_as_s3_would_send_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `sam local generate-event s3 put` writes: a placeholder eTag, size and sequencer.
    event = json.loads((EVENTS / "put.json").read_text())
    event["Records"][0]["s3"]["object"].update(
        eTag="0123456789abcdef0123456789abcdef", size=1024, sequencer="0A1B2C3D4E5F678901"
    )
    path = tmp_path / "generated.json"
    path.write_text(json.dumps(event))

    assert main(["--event", str(path)]) == 0
    [result] = results(capsys.readouterr().out)
    assert result["status"] == "ok"
    assert result["source"]["etag"] == "02be8d7ca3d7a1040a54f875102c2aec"
    assert result["source"]["size"] == 104


def test_delete_event_uploads_nothing_and_says_why_it_was_skipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--event", str(EVENTS / "delete.json")]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "NoResultToWithdraw: the key has no current object and no result" in captured.err
    assert "no result object was written" in captured.err


def test_delete_flag_totals_then_withdraws_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--delete"]) == 0
    captured = capsys.readouterr()
    # stdout: the result as written, then what the deletion did to it, one JSON line each.
    written, deleted = (json.loads(line) for line in captured.out.splitlines())
    assert written["status"] == "ok"
    assert deleted == {
        "deleted": "s3://market-totals-demo/market_a/market_infos.json",
        "bucket": "market-totals-demo",
        "key": "market_a/market_infos.json",
        "status": "withdrawn",
        "result_key": "market_a/total_price.json",
    }
    # stderr: in the order things happened.
    err = captured.err
    order = [
        err.index("result object s3://market-totals-demo/market_a/total_price.json"),
        err.index("deleted s3://market-totals-demo/market_a/market_infos.json"),
        err.index("withdrawn market_a/total_price.json: its input"),
        err.index("no result object is left"),
    ]
    assert order == sorted(order)
    answers = [
        json.loads(line.removeprefix("handler answer: "))
        for line in captured.err.splitlines()
        if line.startswith("handler answer: ")
    ]
    assert [a["records"][0]["status"] for a in answers] == ["ok", "withdrawn"]
    assert "withdrawn market_a/total_price.json: its input" in captured.err
    assert "no result object is left" in captured.err


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if not line.startswith("embedded S3")]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = one_line_error(capsys, ["--file", str(tmp_path / "nope.json")])
    assert line.startswith("make run: error: cannot read --file")
    assert "No such file or directory" in line


def test_missing_event(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = one_line_error(capsys, ["--event", str(tmp_path / "nope.json")])
    assert "cannot read the event" in line


def test_event_that_is_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text("{not json")
    assert "is not JSON" in one_line_error(capsys, ["--event", str(path)])


def test_a_market_document_given_as_the_event_hints_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "my_market.json"
    path.write_text('{"market": "mine", "products": [{"price": 1.5}]}')
    line = one_line_error(capsys, ["--event", str(path)])
    assert line == (
        f"make run: error: {path} is a market document, not an event: upload it with --file {path}"
    )


def test_event_of_a_shape_the_function_does_not_take(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"hello": "world"}')
    assert "unknown shape: keys ['hello']" in one_line_error(capsys, ["--event", str(path)])


def test_event_naming_an_object_with_no_content(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = json.loads((EVENTS / "put.json").read_text())
    event["Records"][0]["s3"]["object"]["key"] = "nowhere/market_infos.json"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    line = one_line_error(capsys, ["--event", str(path)])
    assert "events/objects/nowhere/market_infos.json does not exist" in line
    assert "--file" in line


def test_bucket_name_s3_refuses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    own = tmp_path / "mine.json"
    own.write_text('{"products": []}')
    line = one_line_error(capsys, ["--file", str(own), "--bucket", "Not_A/Bucket"])
    assert "Invalid bucket name" in line


def test_bucket_option_with_a_shape_that_has_no_single_bucket(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = one_line_error(capsys, ["--event", str(EVENTS / "sqs-s3.json"), "--bucket", "b"])
    assert "--bucket works with S3 notifications and EventBridge events" in line


def test_event_and_file_together_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--event", str(EVENTS / "put.json"), "--file", str(tmp_path / "x.json")])
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "make run: error: argument --file: not allowed with argument --event "
        "(ARGS=--help lists the flags)"
    )


@pytest.fixture
def own_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    """An S3 of 'your own' for --real-s3: a moto server the test started, named by the
    environment as a user's would be."""
    import boto3

    with embedded_s3() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        yield boto3.client("s3")


def test_real_s3_uses_the_environment_and_never_creates_buckets(
    own_s3: S3Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    own = tmp_path / "mine.json"
    own.write_text('{"products": [{"price": 1}]}')
    argv = ["--real-s3", "--file", str(own), "--bucket", "my-bucket"]

    line = one_line_error(capsys, argv)
    assert line == "make run: error: bucket 'my-bucket' does not exist (--real-s3 creates none)"
    assert own_s3.list_buckets()["Buckets"] == []

    own_s3.create_bucket(Bucket="my-bucket")
    assert main(argv) == 0
    assert results(capsys.readouterr().out)[0]["total"] == 1


def test_real_s3_without_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it found
    line = one_line_error(capsys, ["--real-s3", "--bucket", "b"])
    assert line == "make run: error: no AWS credentials: set a profile or keys for --real-s3"


def test_help_documents_every_flag_with_its_default_once() -> None:
    text = " ".join(parser().format_help().split())
    for flag in ("--event", "--file", "--key", "--bucket", "--real-s3", "--verbose"):
        assert flag in text
    for default in ("events/put.json", "my_market/market_infos.json", "market-totals-demo"):
        assert text.count(f"(default: {default})") + text.count(f"; {default} with") == 1
    assert text.count("default") == 3  # no "(default: None)" beside the one that says it


def test_key_without_file_is_an_error_not_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["--key", "shop/market_infos.json"])
    assert line == "make run: error: --key names the key --file is uploaded as: give --file too"


# --- `make run` itself: stdout is JSON however it is called, and Python 3.11+ is said in one line


def make_run(*variables: str, target: str = "run") -> subprocess.CompletedProcess[str]:
    """``make run`` (or another ``target``) as typed in a user's shell: without the make
    variables of a `make unit` around this test (a `-s` there would hide what `make run` echoes)."""
    inherited = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {name: value for name, value in os.environ.items() if name not in inherited}
    return subprocess.run(
        ["make", target, *variables],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_run_prints_only_json_on_stdout() -> None:
    # `make run | jq .total` without -s: make must echo nothing onto stdout.
    done = make_run()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == 400
    assert "result object s3://market-totals-demo/market_a/total_price.json" in done.stderr


@pytest.mark.parametrize(
    ("python", "found"),
    [
        ("#!/bin/sh\ncase $1 in -V) echo Python 3.10.13;; -c) echo 0;; esac\n", "Python 3.10.13"),
        (None, "not found"),
    ],
    ids=["3.10", "missing"],
)
def test_make_run_with_an_old_python_says_so_in_one_line(
    tmp_path: Path, python: str | None, found: str
) -> None:
    # A stand-in for Ubuntu 22.04's python3 (3.10): it answers the version questions make asks.
    interpreter = tmp_path / "python3"
    if python is not None:
        interpreter.write_text(python)
        interpreter.chmod(0o755)
    venv = tmp_path / "venv"
    done = make_run(f"PYTHON={interpreter}", f"VENV={venv}")
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "Python 3.11 or newer is needed" in line
    assert f"PYTHON={interpreter} is {found}" in line
    assert not venv.exists()


@pytest.mark.parametrize("script", ["local_invoke.py", "backfill.py"])
def test_the_scripts_on_an_old_python_say_so_in_one_line(script: str) -> None:
    # The interpreter running this test, told it is 3.10: the check must come before any import
    # that would end in a traceback there (datetime.UTC).
    path = ROOT / "scripts" / script
    code = (
        "import runpy, sys\n"
        "sys.version_info = (3, 10, 13, 'final', 0)\n"
        f"sys.argv = [{str(path)!r}]\n"
        f"runpy.run_path({str(path)!r}, run_name='__main__')\n"
    )
    # The script's own folder on the path, as `python scripts/<script>` puts it there.
    env = {**os.environ, "PYTHONPATH": f"{path.parent}:{ROOT / 'src'}"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}: error: Python 3.11 or newer is needed; this is Python 3.10.13 ({sys.executable})"
    ]


# --- exit statuses through make, which exits 2 whenever a recipe fails


def test_make_run_names_the_status_it_could_not_keep() -> None:
    done = make_run("ARGS=--no-such-flag")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines()[-2] == (
        "run exited 2: could not start (usage, settings or S3) "
        "(run scripts/local_invoke.py directly to keep the status)"
    )


def test_make_backfill_names_the_status_it_could_not_keep() -> None:
    done = make_run("ARGS=--prefix p", target="backfill")
    assert done.returncode == 2
    assert "backfill exited 2: could not start (usage, settings or S3)" in done.stderr


@pytest.mark.parametrize(
    ("arguments", "status"), [(["--embedded-demo", "--dry-run"], 0), (["--prefix", "p"], 2)]
)
def test_the_backfill_script_run_directly_keeps_its_status(
    arguments: list[str], status: int
) -> None:
    # The documented way for a script that branches on the status (docs/backfill.md).
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backfill.py"), *arguments],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == status, done.stderr


@pytest.mark.parametrize("goal", ["test", "template-check", "localstack-test", "bench-cold"])
def test_the_python313_targets_say_so_at_once_without_one(goal: str) -> None:
    # PY313= stands for a machine without python3.13: one line, before anything is installed.
    done = make_run("PY313=", target=goal)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert f"make {goal} needs a python3.13" in line
    assert "pyenv install 3.13" in line
