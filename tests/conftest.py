"""Shared fixtures, in the shape moto's documentation teaches: fake credentials in one fixture,
``mock_aws`` in another that creates the bucket and yields a client.

pytest-socket (see ``addopts`` in pyproject.toml) refuses any connection that is not to loopback,
and the credentials below are fake, so no test can reach real AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from handler import storage
from local_invoke import FAKE_AWS_ENV, LocalContext
from support import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# Settings of the function and of AWS that a developer's shell may carry: tests start without them.
_AMBIENT = (
    "RESULT_BUCKET",
    "INPUT_SUFFIX",
    "RESULT_NAME",
    "MAX_INPUT_BYTES",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "POWERTOOLS_TRACE_DISABLED",
)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region for every test, so nothing can sign a real request."""
    for name in _AMBIENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[S3Client]:
    """An in-process moto S3 with the demo bucket created."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def context() -> LocalContext:
    return LocalContext()


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The S3 operations the handler's clients call, in order (``["HeadObject", ...]``).

    Counted on ``before-call``: once per API call (botocore's own retries not included), which
    works with ``mock_aws`` as with a server.
    """
    calls: list[str] = []
    make_client = storage.new_client

    def counting_client() -> S3Client:
        client = make_client()
        client.meta.events.register(
            "before-call.s3", lambda event_name, **_: calls.append(event_name.rsplit(".", 1)[1])
        )
        return client

    monkeypatch.setattr(storage, "new_client", counting_client)
    return calls
