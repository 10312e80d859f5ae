"""pytest plugin with the fixtures of the reliability tests: a moto server over real HTTP, fault
injection on the handler's clients, botocore's backoff without the wait, and moto made atomic
per request. Modules that use them say ``pytest_plugins = ["tests.harness"]``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.retries import standard

from localrun.invoke import embedded_s3, reset_moto
from tests.faults import FaultInjector, on_handler_clients
from tests.support import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session (starting one costs about half a second)."""
    with embedded_s3() as endpoint:
        yield endpoint


@pytest.fixture
def server_s3(
    moto_endpoint: str, aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[S3Client]:
    """The moto server, emptied, with the demo bucket and ``AWS_ENDPOINT_URL_S3`` pointed at it
    (``aws_credentials`` clears that variable for every test, so it is set here after it).

    Emptied before and after: moto's in-process servers share one store with each other and
    with ``mock_aws``, so what a test leaves would be seen by the next.
    """
    reset_moto(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    client: S3Client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    reset_moto(moto_endpoint)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> FaultInjector:
    """Faults on every client the handler makes from now on."""
    injector = FaultInjector()
    on_handler_clients(monkeypatch, injector.install)
    return injector


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays botocore's standard retry mode chose, in order; it then waits 0 s
    instead, so that retry tests stay fast."""
    chosen: list[float] = []
    delay_amount = standard.ExponentialBackoff.delay_amount

    def no_wait(self: standard.ExponentialBackoff, context: standard.RetryContext) -> float:
        chosen.append(delay_amount(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", no_wait)
    return chosen


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's server apply each object request atomically, as S3 does.

    moto 5's ``S3Response.put_object`` checks ``If-Match``/``If-None-Match``, stores the new key,
    then sets its metadata, with no lock (the server's only lock guards choosing the backend):
    two threads can both pass the check and both write, and a HEAD in between sees the new
    object without its metadata. S3 itself applies each request atomically (conditional writes
    are atomic; a loser gets 412 or 409). One lock around moto's handling of each object
    request gives that back; invocations still interleave freely between their requests,
    which is the race under test. ``test_races`` shows moto's race without this lock.
    """
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    key_response = S3Response.key_response

    def one_at_a_time(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return key_response(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "key_response", one_at_a_time)


@pytest.fixture
def concurrent_invocations(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that run many invocations at once in threads of one process. Lambda never does
    (one invocation per process at a time), and Powertools' Metrics is process-wide: one thread's
    flush can empty the set between another's check and its own serialisation, which then raises
    "Must contain at least one metric". Metrics are not what these tests measure: switched off."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
