"""Against a deployed stack: ``AWS_SAM_STACK_NAME=market-totals-dev pytest
tests/end_to_end/integration``.

Reads the stack's outputs, uploads inputs under a prefix of its own, waits (with backoff) for the
results the function writes, and removes every version it created. Without
``AWS_SAM_STACK_NAME`` the whole module is skipped: it is the only skip of the suite.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

STACK = os.environ.get("AWS_SAM_STACK_NAME")
RESULT_TIMEOUT_SECONDS = 180

pytestmark = (
    # Real AWS endpoints: pytest-socket's loopback-only rule (pyproject.toml) cannot apply here.
    [pytest.mark.enable_socket]
    if STACK
    else [
        pytest.mark.skip(
            reason="needs a deployed stack: set AWS_SAM_STACK_NAME (README, Deploy) to run it"
        )
    ]
)


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    cloudformation: Any = boto3.client("cloudformation")
    (stack,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


@pytest.fixture(scope="module")
def s3() -> S3Client:
    return boto3.client("s3")


@pytest.fixture
def prefix(s3: S3Client, outputs: dict[str, str]) -> Iterator[str]:
    """A fresh key prefix; every object version and delete marker under it is removed after."""
    prefix = f"integration-{uuid.uuid4().hex[:12]}/"
    yield prefix
    bucket = outputs["BucketName"]
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        doomed: list[ObjectIdentifierTypeDef] = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})


def wait_for_result(s3: S3Client, bucket: str, key: str) -> tuple[str, dict[str, Any]]:
    """The result object's text and document, polling with exponential backoff."""
    delay, deadline = 1.0, time.monotonic() + RESULT_TIMEOUT_SECONDS
    while True:
        try:
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no s3://{bucket}/{key} after {RESULT_TIMEOUT_SECONDS}s"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
            continue
        return text, json.loads(text, parse_float=Decimal)


def test_outputs_name_the_bucket_function_and_failure_queue(outputs: dict[str, str]) -> None:
    assert {"BucketName", "FunctionName", "FailureQueueUrl"} <= set(outputs)


def test_a_market_gets_its_exact_total(s3: S3Client, outputs: dict[str, str], prefix: str) -> None:
    bucket = outputs["BucketName"]
    key = f"{prefix}market_infos.json"
    put = s3.put_object(
        Bucket=bucket, Key=key, Body=b'{"products": [{"price": 0.1}, {"price": 0.2}]}'
    )
    text, result = wait_for_result(s3, bucket, f"{prefix}total_price.json")
    assert result["status"] == "ok", text
    assert '"total": 0.3,' in text  # exact decimal, written in plain notation
    assert result["product_count"] == 2
    assert result["source"]["key"] == key
    assert result["source"]["version_id"] == put["VersionId"]  # the bucket is versioned


def test_an_invalid_file_gets_status_invalid(
    s3: S3Client, outputs: dict[str, str], prefix: str
) -> None:
    bucket = outputs["BucketName"]
    s3.put_object(Bucket=bucket, Key=f"{prefix}market_infos.json", Body=b"not json")
    text, result = wait_for_result(s3, bucket, f"{prefix}total_price.json")
    assert result["status"] == "invalid", text
    assert result["error"]["code"] == "InvalidJSON"
