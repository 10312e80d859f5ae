"""Security of the suite and of the function's output.

- No test can connect anywhere but loopback (pytest-socket, configured in pyproject.toml).
- Every test runs with fake credentials, and every request the handler signs uses them.
- Logs never carry the document's content or a secret; keys are logged as escaped JSON, so a
  key cannot break a log line or forge one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import HTTPClientError
from pytest_socket import SocketConnectBlockedError

from handler import storage
from handler.app import RecordsFailed, lambda_handler
from handler.observability import logger
from localrun.invoke import FAKE_AWS_ENV, LocalContext, put_event
from tests.faults import (
    FaultInjector,
    combine,
    connection_reset,
    error_status,
    market,
    on_handler_clients,
)
from tests.support import BUCKET, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytest_plugins = ["tests.harness"]

SECRET_KEY = "sEcReT/Access+Key0123456789abcdefghijklmn"
SESSION_TOKEN = "SeSsIoNtOkEn-0123456789"
PRICES = ["98765.4321", "12345.6789"]
TOTAL = "111111.1110"
PRODUCT = "Contoso Confidential Widget"
#: pytest-socket's refusal, as botocore passes it on.
BLOCKED = r"A test tried to use socket.socket.connect\(\) with host \"0.0.0.0\""


@pytest.fixture
def loopback_listener() -> Iterator[int]:
    """A port that accepts connections on this machine only."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_a_non_loopback_connection_is_refused(loopback_listener: int) -> None:
    # 0.0.0.0 is not on the allow-list, yet reaches this machine only: were the guard gone, the
    # connection would succeed (to the listener) and the test fail, without any traffic leaving.
    with pytest.raises(SocketConnectBlockedError), pytest.warns(UserWarning, match=BLOCKED):
        socket.create_connection(("0.0.0.0", loopback_listener), timeout=1)
    # The same through botocore, as a client pointed away from loopback would go.
    client = boto3.client("s3", endpoint_url=f"http://0.0.0.0:{loopback_listener}")
    with pytest.raises(HTTPClientError, match=BLOCKED), pytest.warns(UserWarning, match=BLOCKED):
        client.list_buckets()


def test_connect_ex_is_held_to_loopback_too(loopback_listener: int) -> None:
    # pytest-socket leaves connect_ex alone; conftest's guard closes that gap.
    with socket.socket() as sock, pytest.raises(SocketConnectBlockedError):
        sock.connect_ex(("0.0.0.0", loopback_listener))
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", loopback_listener)) == 0


def test_loopback_stays_allowed(loopback_listener: int) -> None:
    # The guard is an allow-list, not a blanket ban: the moto-server tests depend on this.
    with socket.create_connection(("127.0.0.1", loopback_listener), timeout=1):
        pass


def test_the_handler_without_an_endpoint_override_cannot_leave_the_machine(
    context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No moto and no endpoint: the handler would go to AWS. Name resolution is made to answer
    # with a non-loopback address (so no DNS query leaves either); pytest-socket refuses it.
    monkeypatch.setattr(socket, "getaddrinfo", _resolve_everything_to_0000)
    one_attempt = Config(retries={"mode": "standard", "total_max_attempts": 1})
    monkeypatch.setattr(storage, "CLIENT_CONFIG", storage.CLIENT_CONFIG.merge(one_attempt))
    event = put_event(BUCKET, "m/market_infos.json", etag="0" * 32, size=10, sequencer="0A")

    with pytest.raises(RecordsFailed, match=BLOCKED), pytest.warns(UserWarning, match=BLOCKED):
        lambda_handler(event, context)


def _resolve_everything_to_0000(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("0.0.0.0", int(port or 443)))]


def test_credentials_are_fake_in_every_test() -> None:
    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    assert credentials.method == "env"  # the environment wins over any profile or file
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key) == ("testing", "testing")
    for name, value in FAKE_AWS_ENV.items():
        assert os.environ[name] == value


def test_every_request_the_handler_signs_uses_the_fake_credentials(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    signatures: list[str] = []

    def record(client: S3Client) -> None:
        client.meta.events.register(
            "before-send.s3",
            lambda request, **_: signatures.append(str(request.headers["Authorization"])),
        )

    on_handler_clients(monkeypatch, record)
    event = upload(server_s3, "m/market_infos.json", market(["1"]), sequencer="0A")
    lambda_handler(event, context)

    # HEAD of the result, GET of the source, PUT of the result, HEAD of the key (contract r4)
    assert len(signatures) == 4
    assert all("Credential=testing/" in signature for signature in signatures)


# --- logs ----------------------------------------------------------------------------------------


class LogCapture:
    """Everything the handler writes: Powertools' JSON log lines, and stdout (metrics)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        # Split on "\n" only: that is where a log shipper splits.
        return [json.loads(line) for line in self.stream.getvalue().split("\n") if line]

    def text(self, capsys: pytest.CaptureFixture[str]) -> str:
        captured = capsys.readouterr()
        return self.stream.getvalue() + captured.out + captured.err


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Powertools' log lines at DEBUG, captured (its handler holds the stdout it was made with,
    so it is pointed at a buffer rather than captured by pytest)."""
    capture = LogCapture()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream = handler.setStream(capture.stream)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield capture
    finally:
        logger.setLevel(previous_level)
        handler.setStream(previous_stream)


def test_logs_carry_no_document_content_and_no_secret(
    server_s3: S3Client,
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    injector = FaultInjector()
    on_handler_clients(monkeypatch, injector.install)
    ok = upload(server_s3, "ok/market_infos.json", market(PRICES, name=PRODUCT), sequencer="0A")
    # yajl quotes the document around a syntax error; a schema error names a value's place.
    bad_json = b'{"products": [{"price": 1}, SECRET-GARBAGE-' + PRODUCT.encode() + b"]}"
    bad_schema = f'{{"products": [{{"price": "{PRICES[0]}"}}]}}'.encode()
    invalid_json = upload(server_s3, "json/market_infos.json", bad_json, sequencer="0A")
    invalid_schema = upload(server_s3, "schema/market_infos.json", bad_schema, sequencer="0A")
    denied = upload(server_s3, "denied/market_infos.json", market(PRICES), sequencer="0A")
    reset = upload(server_s3, "reset/market_infos.json", market(PRICES), sequencer="0A")
    # GETs only: under mock_aws, moto still executes a request a fault answers.
    injector.always("GetObject", error_status(403, "AccessDenied"), key=_key(denied))
    injector.always("GetObject", connection_reset, key=_key(reset))

    with pytest.raises(RecordsFailed) as failure:
        lambda_handler(combine(ok, invalid_json, invalid_schema, denied, reset), context)

    lines = logs.lines()
    messages = [line["message"] for line in lines]
    assert messages.count("record processed") == 3
    assert messages.count("record failed; it will be retried") == 2
    everything = logs.text(capsys) + str(failure.value)
    for secret in [*PRICES, TOTAL, PRODUCT, "SECRET-GARBAGE", SECRET_KEY, SESSION_TOKEN]:
        assert secret not in everything


def _key(event: dict[str, Any]) -> str:
    return str(event["Records"][0]["s3"]["object"]["key"])


HOSTILE_KEY = 'evil\n{"level":"ERROR","message":"forged"}\r\x1b[31m\x07\u2028ä/market_infos.json'


@pytest.mark.parametrize("failing", [False, True], ids=["processed", "failed"])
def test_hostile_keys_are_logged_as_escaped_json(
    s3: S3Client,
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
    failing: bool,
) -> None:
    event = upload(s3, HOSTILE_KEY, market(["1"]), sequencer="0A")
    if failing:
        injector = FaultInjector()
        on_handler_clients(monkeypatch, injector.install)
        injector.always("GetObject", connection_reset)
        with pytest.raises(RecordsFailed):
            lambda_handler(event, context)
    else:
        lambda_handler(event, context)

    raw = logs.stream.getvalue()
    lines = logs.lines()  # every line is still one whole JSON document
    assert all(line["message"] != "forged" for line in lines)
    assert not any(ch in raw for ch in "\r\x1b\x07")  # control characters are escaped
    logged = [line.get("key") or line.get("record") for line in lines]
    assert any(HOSTILE_KEY in str(value) for value in logged)
