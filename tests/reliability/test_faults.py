"""Faults on each S3 call of the handler, over real HTTP to a moto server: throttling, 5xx,
timeouts and resets on the HEAD of the stored result, the GET of the source and the PUT of the
result, and a connection that breaks in the middle of streaming the source.

The promise (docs/behaviour.md, "Failures"): a transient failure is raised after every record of the
event was tried; no partial or corrupt result is written; the retried event then succeeds. And
botocore's retries are what ``storage.CLIENT_CONFIG`` says: standard mode, 3 attempts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config

from handler import storage
from handler.app import RecordsFailed, lambda_handler
from localrun.invoke import LocalContext
from tests.faults import (
    BreakingProxy,
    Fault,
    FaultInjector,
    combine,
    connection_reset,
    cut_body,
    error_status,
    lost_response,
    market,
    read_timeout,
    result_exists,
    stream_reset,
    stream_timeout,
)
from tests.support import read_result, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


pytest_plugins = ["tests.harness"]

FAULTY = "faulty/market_infos.json"
HEALTHY = "healthy/market_infos.json"
FAULTY_RESULT = "faulty/total_price.json"
HEALTHY_RESULT = "healthy/total_price.json"

FAULTS: dict[str, Fault] = {
    "SlowDown503": error_status(503, "SlowDown"),
    "InternalError500": error_status(500, "InternalError"),
    "ReadTimeout": read_timeout,
    "ConnectionReset": connection_reset,
}
#: Each S3 call of the handler, and the key it is made on for the faulty record.
CALLS = {"HeadObject": FAULTY_RESULT, "GetObject": FAULTY, "PutObject": FAULTY_RESULT}


def _two_records(server_s3: S3Client) -> dict[str, Any]:
    """An event whose first record will meet the fault and whose second will not."""
    faulty = upload(server_s3, FAULTY, market(["0.10", "0.20"]), sequencer="0A")
    healthy = upload(server_s3, HEALTHY, market(["150.00", "250.00"]), sequencer="0B")
    return combine(faulty, healthy)


def test_the_client_is_configured_as_documented() -> None:
    config = vars(storage.new_client().meta.config)
    assert config["retries"] == {"mode": "standard", "total_max_attempts": 3}
    assert (config["connect_timeout"], config["read_timeout"]) == (5, 20)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("call", CALLS)
def test_a_single_transient_fault_is_retried_by_botocore(
    server_s3: S3Client,
    faults: FaultInjector,
    backoffs: list[float],
    call: str,
    fault: str,
) -> None:
    event = upload(server_s3, FAULTY, market(["0.10", "0.20"]), sequencer="0A")
    faults.once(call, FAULTS[fault])

    summary = lambda_handler(event, LocalContext())

    assert summary["records"][0]["status"] == "ok"
    assert read_result(server_s3, FAULTY_RESULT)["total"] == Decimal("0.30")
    assert faults.attempts[call, CALLS[call]] == 2
    assert len(backoffs) == 1  # botocore backed off once before its retry


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("call", CALLS)
def test_a_persistent_fault_fails_the_event_after_every_record_and_a_retry_succeeds(
    server_s3: S3Client,
    faults: FaultInjector,
    backoffs: list[float],
    call: str,
    fault: str,
) -> None:
    event = _two_records(server_s3)
    faults.always(call, FAULTS[fault], key=CALLS[call])

    with pytest.raises(RecordsFailed, match=f"1 of 2 record\\(s\\) failed: [^;]*/{FAULTY}"):
        lambda_handler(event, LocalContext())

    # botocore gave up after CLIENT_CONFIG's 3 attempts, backing off between them.
    assert faults.attempts[call, CALLS[call]] == 3
    assert len(backoffs) == 2
    # The record after the failing one was still tried, and nothing was written for the failure.
    assert read_result(server_s3, HEALTHY_RESULT)["total"] == Decimal("400.00")
    assert not result_exists(server_s3, FAULTY_RESULT)
    if call != "PutObject":  # a failed read never leads to a write
        assert faults.attempts["PutObject", FAULTY_RESULT] == 0

    faults.clear()
    retried = lambda_handler(event, LocalContext())

    assert [(r["status"], r.get("reason")) for r in retried["records"]] == [
        ("ok", None),
        ("skipped", "ResultUpToDate"),  # the healthy record is not redone
    ]
    assert read_result(server_s3, FAULTY_RESULT)["total"] == Decimal("0.30")


def test_explicit_retry_settings_win_over_the_environment(
    server_s3: S3Client,
    faults: FaultInjector,
    backoffs: list[float],
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Lambda's environment (or a profile) must not turn 3 attempts into 10 or change the mode.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "10")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    event = upload(server_s3, FAULTY, market(["1"]), sequencer="0A")
    faults.always("GetObject", error_status(503, "SlowDown"))

    with pytest.raises(RecordsFailed, match="SlowDown"):
        lambda_handler(event, context)

    assert faults.attempts["GetObject", FAULTY] == 3


@pytest.mark.parametrize(
    ("error", "raised"),
    [(stream_reset, "ResponseStreamingError"), (stream_timeout, "ReadTimeoutError")],
)
def test_a_source_that_breaks_mid_stream_writes_nothing_and_the_retry_succeeds(
    server_s3: S3Client,
    faults: FaultInjector,
    context: LocalContext,
    error: Any,
    raised: str,
) -> None:
    # About 1.3 MB, so the parser has added up thousands of prices when the connection breaks.
    prices = [f"{i}.{i % 100:02d}" for i in range(40_000)]
    body = market(prices, name="product")
    cut_at = 600_000
    assert len(body) > 2 * cut_at
    faulty = upload(server_s3, FAULTY, body, sequencer="0A")
    healthy = upload(server_s3, HEALTHY, market(["150.00", "250.00"]), sequencer="0B")
    event = combine(faulty, healthy)
    faults.always("GetObject", cut_body(cut_at, error()), key=FAULTY)

    with pytest.raises(RecordsFailed, match=f"{FAULTY}: {raised}"):
        lambda_handler(event, context)

    # A broken body is not retried by botocore (the call had returned): one attempt, and no
    # write was even tried.
    assert faults.attempts["GetObject", FAULTY] == 1
    assert faults.attempts["PutObject", FAULTY_RESULT] == 0
    assert not result_exists(server_s3, FAULTY_RESULT)
    assert read_result(server_s3, HEALTHY_RESULT)["total"] == Decimal("400.00")

    faults.clear()
    lambda_handler(event, context)

    result = read_result(server_s3, FAULTY_RESULT)
    assert result["total"] == sum(Decimal(p) for p in prices)
    assert result["product_count"] == len(prices)


@pytest.mark.parametrize("earlier_result", [False, True], ids=["IfNoneMatch", "IfMatch"])
def test_a_lost_put_response_is_retried_into_a_conflict_that_resolves_itself(
    server_s3: S3Client,
    faults: FaultInjector,
    backoffs: list[float],
    context: LocalContext,
    earlier_result: bool,
) -> None:
    # S3 stored the result but the answer was lost: botocore's retry of the conditional PUT
    # meets its own write (412), and the handler's re-check finds the result already current.
    if earlier_result:
        lambda_handler(upload(server_s3, FAULTY, market(["1"]), sequencer="09"), context)
    event = upload(server_s3, FAULTY, market(["0.10", "0.20"]), sequencer="0A")
    faults.once("PutObject", lost_response)
    faults.attempts.clear()

    summary = lambda_handler(event, context)

    assert summary["records"][0]["reason"] == "ResultUpToDate"
    assert faults.attempts["PutObject", FAULTY_RESULT] == 2
    result = read_result(server_s3, FAULTY_RESULT)
    assert (result["total"], result["source"]["sequencer"]) == (Decimal("0.30"), "0A")


@pytest.mark.parametrize(
    ("stall", "raised"),
    [(False, "ResponseStreamingError"), (True, "ReadTimeoutError")],
    ids=["reset", "stall"],
)
def test_a_source_broken_on_the_wire_mid_stream_writes_nothing(
    server_s3: S3Client,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    stall: bool,
    raised: str,
) -> None:
    # The same promise as above, with real sockets: a proxy resets the connection (RST) or
    # stops sending part-way through the body. The read timeout is shortened so that the stall
    # is noticed in a second rather than CLIENT_CONFIG's 20 s; it bounds each read, not the body.
    prices = [f"{i}.{i % 100:02d}" for i in range(40_000)]
    event = upload(server_s3, FAULTY, market(prices), sequencer="0A")
    proxy = BreakingProxy(moto_endpoint, FAULTY, after_bytes=600_000, stall=stall)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.endpoint)
    quick = Config(read_timeout=1, retries={"mode": "standard", "total_max_attempts": 3})
    monkeypatch.setattr(storage, "CLIENT_CONFIG", storage.CLIENT_CONFIG.merge(quick))
    try:
        with pytest.raises(RecordsFailed, match=f"{FAULTY}: {raised}"):
            lambda_handler(event, LocalContext())
        assert proxy.broken.is_set()
        assert not result_exists(server_s3, FAULTY_RESULT)

        summary = lambda_handler(event, LocalContext())  # the proxy breaks only once
    finally:
        proxy.close()

    assert summary["records"][0]["status"] == "ok"
    assert read_result(server_s3, FAULTY_RESULT)["total"] == sum(Decimal(p) for p in prices)
