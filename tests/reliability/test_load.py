"""Load: 1,000 keys, one event each, invoked concurrently against one moto server over HTTP.

The promise: every object gets its result, each exact; none is missing and no invocation fails.
Objects are seeded and results read straight from the server's store (``store_directly``), so
that the time goes to the handler's own S3 calls, which all go over HTTP.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

import pytest

from handler import storage
from handler.app import lambda_handler
from localrun.invoke import LocalContext
from tests.faults import market, read_directly, store_directly
from tests.support import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytest_plugins = ["tests.harness"]

KEYS = 1_000
WORKERS = 8


def _prices(rng: random.Random) -> list[str]:
    """1 to 20 prices of mixed scales, some with 50 significant digits."""
    return [
        rng.choice(
            [
                f"{rng.randint(0, 10**6)}",
                f"{rng.randint(0, 10**6)}.{rng.randint(0, 99):02d}",
                f"{rng.randint(10**29, 10**30 - 1)}.{rng.randint(0, 10**20 - 1):020d}",
            ]
        )
        for _ in range(rng.randint(1, 20))
    ]


def _invoke(event: dict[str, Any]) -> str:
    """The record's status, or the error the invocation raised."""
    try:
        return str(lambda_handler(event, LocalContext())["records"][0]["status"])
    except Exception as error:  # noqa: BLE001 - every failure is reported, not just the first
        return f"{type(error).__name__}: {error}"


@pytest.mark.usefixtures("concurrent_invocations")
def test_1000_keys_processed_concurrently_all_exact_none_missing(server_s3: S3Client) -> None:
    rng = random.Random(1000)
    markets = {f"load/{n:04d}/market_infos.json": _prices(rng) for n in range(KEYS)}
    events = [store_directly(key, market(p), sequencer="0A") for key, p in markets.items()]
    storage.new_client()  # boto3's default session sets itself up lazily, not thread-safely

    with ThreadPoolExecutor(WORKERS) as pool:
        statuses = list(pool.map(_invoke, events))

    assert [s for s in statuses if s != "ok"] == []
    listed = server_s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="load/")
    results = {obj["Key"] for page in listed for obj in page.get("Contents", [])} - set(markets)
    assert len(results) == KEYS
    wrong = []
    for key, prices in markets.items():
        result = read_directly(key.replace("market_infos", "total_price"))
        with localcontext(prec=100):  # the oracle must not round either
            expected = sum(Decimal(p) for p in prices)
        if (result["status"], result["source"]["key"], result["total"]) != ("ok", key, expected):
            wrong.append(key)
    assert wrong == []
