"""The pure result rules (``handler.rules.documents``): naming, timestamps, the result documents."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from handler.rules.documents import (
    SourceInfo,
    invalid_document,
    ok_document,
    utc_timestamp,
)
from handler.rules.settings import Settings
from handler.totals import InvalidDocument, Total

SOURCE = SourceInfo(
    bucket="b", key="m/market_infos.json", version_id=None, etag="abc", sequencer="0A", size=10
)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("market_a/market_infos.json", "market_a/total_price.json"),
        ("market_infos.json", "total_price.json"),
        ("a/b/c/market_infos.json", "a/b/c/total_price.json"),
        ("market a/märkte/market_infos.json", "market a/märkte/total_price.json"),
        ("x/my_market_infos.json", "x/total_price.json"),
    ],
)
def test_result_key_replaces_the_last_segment(key: str, expected: str) -> None:
    assert Settings(result_name="total_price.json").result_target("b", key) == ("b", expected)


def test_utc_timestamp_has_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 21, 20, 35, 25, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert utc_timestamp(moment) == "2026-11-21T18:35:25.123Z"
    assert utc_timestamp().endswith("Z")
    assert datetime.strptime(utc_timestamp(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def test_ok_document_writes_the_exact_total_as_a_plain_number() -> None:
    body = ok_document(Total(Decimal("4.00E+2"), 2), SOURCE, "2026-11-21T00:00:00.000Z")
    assert body.startswith(b'{"status": "ok", "total": 400, ')
    doc = json.loads(body, parse_float=Decimal)
    assert list(doc) == ["status", "total", "product_count", "source", "computed_at"]
    assert doc["product_count"] == 2
    assert doc["source"] == {
        "bucket": "b",
        "key": "m/market_infos.json",
        "version_id": None,
        "etag": "abc",
        "sequencer": "0A",
        "size": 10,
    }
    exact = ok_document(Total(Decimal("0.30"), 2), SOURCE, "t")
    assert json.loads(exact, parse_float=Decimal)["total"] == Decimal("0.30")
    assert b'"total": 0.30,' in exact


def test_invalid_document_carries_code_and_message() -> None:
    error = InvalidDocument("InvalidSchema", "products[3].price: expected a number, got a string")
    doc = json.loads(invalid_document(error, SOURCE, "2026-11-21T00:00:00.000Z"))
    assert doc == {
        "status": "invalid",
        "error": {
            "code": "InvalidSchema",
            "message": "products[3].price: expected a number, got a string",
        },
        "source": doc["source"],
        "computed_at": "2026-11-21T00:00:00.000Z",
    }
    assert doc["source"]["key"] == "m/market_infos.json"


@pytest.mark.parametrize("document", ["ok", "invalid"])
def test_documents_are_utf8_with_keys_as_written(document: str) -> None:
    # A key that is not ASCII reads as itself in the result, not as \\u escapes.
    source = SourceInfo("b", "märkte/市場/market_infos.json", None, "abc", None, 10)
    body = (
        ok_document(Total(Decimal(1), 1), source, "t")
        if document == "ok"
        else invalid_document(InvalidDocument("InvalidJSON", "x"), source, "t")
    )
    assert "märkte/市場/market_infos.json".encode() in body
    assert b"\\u" not in body


def test_utc_timestamp_truncates_to_the_millisecond() -> None:
    for micro, millis in ((500999, "500"), (999000, "999"), (999999, "999")):
        moment = datetime(2026, 11, 21, 20, 35, 25, micro, tzinfo=UTC)
        assert utc_timestamp(moment) == f"2026-11-21T20:35:25.{millis}Z"


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is not UTC (a developer's laptop running `make run`)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo_local_time")
def test_utc_timestamp_is_utc_whatever_the_local_time_zone() -> None:
    moment = datetime(2026, 11, 21, 20, 35, 25, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert utc_timestamp(moment) == "2026-11-21T18:35:25.123Z"
    now = datetime.strptime(utc_timestamp(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_an_invalid_document_error_reads_as_its_code_and_message() -> None:
    assert str(InvalidDocument("InvalidSchema", "products: missing")) == (
        "InvalidSchema: products: missing"
    )
