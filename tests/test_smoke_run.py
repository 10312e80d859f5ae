"""``make run``'s driver, end to end: embedded moto server, sample event, result object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_invoke import main
from support import EVENTS


def test_make_run_prints_an_ok_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith('{"status"'))
    assert json.loads(line)["status"] == "ok"
    assert json.loads(line)["total"] == 400


def test_make_run_with_a_file_of_your_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tmp_path / "mine.json"
    own.write_text('{"products": [{"price": 19.99}, {"price": 0.01}]}')

    assert main(["--file", str(own), "--key", "shop/market_infos.json"]) == 0

    out = capsys.readouterr().out
    assert "result object s3://market-totals-demo/shop/total_price.json:" in out
    line = next(line for line in out.splitlines() if line.startswith('{"status"'))
    assert '"total": 20.00,' in line  # exact, scale kept: printed as stored


def test_make_run_with_another_event_and_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--event", str(EVENTS / "put-many.json"), "--bucket", "another-bucket"]) == 0
    out = capsys.readouterr().out
    assert "s3://another-bucket/market_b/total_price.json" in out
    assert '"reason": "NotAnInputKey"' in out
