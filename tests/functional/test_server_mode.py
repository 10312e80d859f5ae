"""Server mode, as moto's docs teach it: a ``ThreadedMotoServer`` on loopback and
``AWS_ENDPOINT_URL_S3`` pointed at it drive the unmodified handler over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest

from handler.app import lambda_handler
from localrun.invoke import embedded_s3, seed_event_objects
from tests.support import load_event, read_result

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext


@pytest.fixture
def server_s3(aws_credentials: None) -> Iterator[S3Client]:
    with embedded_s3() as endpoint:
        yield boto3.client("s3", endpoint_url=endpoint)


def test_handler_against_a_moto_server(server_s3: S3Client, context: LocalContext) -> None:
    event = load_event("put-many.json")
    seed_event_objects(server_s3, event)

    summary = lambda_handler(event, context)

    assert [r["status"] for r in summary["records"]] == ["ok", "ok", "skipped"]
    assert read_result(server_s3, "market_a/total_price.json")["total"] == 400
    # The duplicate delivery is recognised across real HTTP too.
    again = lambda_handler(event, context)
    assert [r.get("reason") for r in again["records"]][:2] == ["ResultUpToDate"] * 2


def test_endpoint_override_is_what_the_handler_uses(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on the overridden endpoint: the handler must fail, proving it follows
    # AWS_ENDPOINT_URL_S3 rather than a client made earlier.
    from handler.app import RecordsFailed
    from handler.storage import CLIENT_CONFIG

    event = load_event("put.json")
    seed_event_objects(server_s3, event)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setattr(CLIENT_CONFIG, "retries", {"mode": "standard", "total_max_attempts": 1})
    with pytest.raises(RecordsFailed, match="EndpointConnectionError"):
        lambda_handler(event, context)
