"""Shared fixtures, in the shape moto's documentation teaches: fake credentials in one fixture,
``mock_aws`` in another that creates the bucket and yields a client.

pytest-socket (see ``addopts`` in pyproject.toml) refuses any connection that is not to loopback,
and the credentials below are fake, so no test can reach real AWS.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from pytest_socket import SocketConnectBlockedError

from handler import storage
from handler.observability import logger
from handler.result_store import KNOWN
from localrun.invoke import FAKE_AWS_ENV, LocalContext
from tests.support import BUCKET

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutation testing only (docs/mutation.md): the quickest tests first. mutmut stops a
    mutant's run at its first failing test, and it records every test's duration where the
    mutant runs (``mutants/mutmut-stats.json``)."""
    stats = Path("mutmut-stats.json")
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", "") or not stats.is_file():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


@pytest.fixture(autouse=True, scope="session")
def loopback_only_connect_ex() -> Iterator[None]:
    """pytest-socket's allow-list guards ``socket.connect`` only: hold ``connect_ex`` to the
    same loopback-only rule, so no way of connecting is left open."""
    real = socket.socket.connect_ex

    def guarded(self: socket.socket, address: Any) -> int:
        host = str(address[0]) if isinstance(address, tuple) else None
        if host is not None and not (host in ("localhost", "::1") or host.startswith("127.")):
            raise SocketConnectBlockedError(["127.0.0.1", "localhost", "::1"], host)
        return real(self, address)

    socket.socket.connect_ex = guarded  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect_ex = real  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region for every test, so nothing can sign a real request."""
    for name in _AMBIENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def cold_container() -> Iterator[None]:
    """Every test starts as a new container: nothing remembered of results from another test's
    S3 (``handler.result_store``). Tests of what a warm container remembers make it so."""
    KNOWN.clear()
    yield
    KNOWN.clear()


@pytest.fixture
def s3(aws_credentials: None) -> Iterator[S3Client]:
    """An in-process moto S3 with the demo bucket created."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def versioned(s3: S3Client) -> S3Client:
    """The demo bucket, with versioning enabled."""
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


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


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Powertools' log lines (its handler holds the stdout it was made with, so it is pointed at
    a buffer rather than captured by pytest)."""
    stream = io.StringIO()
    registered = logger.registered_handler
    assert isinstance(registered, logging.StreamHandler)
    previous = registered.setStream(stream)
    try:
        yield stream
    finally:
        registered.setStream(previous)
