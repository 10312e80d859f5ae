"""Fixtures of the LocalStack suite (``make localstack-test``; not part of ``make unit``).

Why this suite: every other test runs the handler on moto with events we wrote, so a wrong idea
of an event's shape would be wrong on both sides and still pass. Here LocalStack, an emulator we
did not build, produces the events with its own notification code (S3 -> SQS, S3 -> SNS -> SQS,
S3 -> EventBridge), and the handler reads and writes LocalStack's S3 through its own client.

One LocalStack process serves the session (it takes seconds to start); each test gets a bucket
and queue of its own, so tests cannot see each other's events. If LocalStack cannot start, the
session fails with its log: a skipped end-to-end suite would look like a passing one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.end_to_end.localstack.lambda_standin import Stack
from tests.infra.localstack_runtime import LocalStackError, LocalStackProcess, start
from tests.infra.localstack_wiring import Clients, Route

#: Every scenario runs on each route, with an unversioned and a versioned bucket.
SCENARIOS = [
    pytest.param(("sqs", False), id="sqs-unversioned"),
    pytest.param(("sqs", True), id="sqs-versioned"),
    pytest.param(("eventbridge", False), id="eventbridge-unversioned"),
    pytest.param(("eventbridge", True), id="eventbridge-versioned"),
    pytest.param(("sns", False), id="sns-unversioned"),
    pytest.param(("sns", True), id="sns-versioned"),
]


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """LocalStack on a free loopback port, its state in a temporary directory, stopped (SIGTERM,
    then SIGKILL) at the end of the session."""
    try:
        process = start(tmp_path_factory.mktemp("localstack"))
    except LocalStackError as error:
        # A failure, never a skip: a skipped end-to-end suite would pass unnoticed.
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def localstack_endpoint(
    localstack: LocalStackProcess, aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Point every client made without an endpoint, above all the handler's own
    ``boto3.client("s3")``, at LocalStack.

    Set after ``aws_credentials`` (which clears ``AWS_ENDPOINT_URL`` and sets fake credentials).
    No addressing setting is needed: with an IP address as endpoint botocore uses path-style
    requests (``http://127.0.0.1:port/bucket/key``), which LocalStack serves.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", localstack.endpoint)
    return localstack.endpoint


@pytest.fixture(scope="session")
def clients(localstack: LocalStackProcess) -> Clients:
    """The tests' own clients (set-up and checks), bound to LocalStack explicitly."""
    return Clients.for_endpoint(localstack.endpoint)


@pytest.fixture(params=SCENARIOS)
def stack(request: pytest.FixtureRequest, clients: Clients) -> Stack:
    """A new bucket wired to a new queue, for each route and bucket kind of ``SCENARIOS``."""
    route: Route
    versioned: bool
    route, versioned = request.param
    return Stack.create(clients, route, versioned=versioned)
