"""``make run``'s driver, end to end: embedded moto server, sample event, result object."""

from __future__ import annotations

import json

import pytest

from local_invoke import main


def test_make_run_prints_an_ok_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith('{"status"'))
    assert json.loads(line)["status"] == "ok"
    assert json.loads(line)["total"] == 400
