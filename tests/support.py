"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_invoke import put_event

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EVENTS = Path(__file__).resolve().parent.parent / "events"
BUCKET = "market-totals-demo"


def load_event(name: str) -> dict[str, Any]:
    """An event file from ``events/``."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def read_result(client: S3Client, key: str, bucket: str = BUCKET) -> dict[str, Any]:
    """A result object, parsed with exact decimals (a float would hide a wrong digit)."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return document


def upload(
    client: S3Client, key: str, body: bytes, *, sequencer: str | None = None, bucket: str = BUCKET
) -> dict[str, Any]:
    """Put ``body`` at ``key`` and return the single-record event S3 would send for it."""
    put = client.put_object(Bucket=bucket, Key=key, Body=body)
    return put_event(
        bucket,
        key,
        etag=put["ETag"].strip('"'),
        size=len(body),
        sequencer=sequencer,
        version_id=put.get("VersionId"),
    )
