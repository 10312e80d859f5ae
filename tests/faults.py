"""S3 fault injection and event helpers for the reliability tests (their fixtures are in
``harness.py``).

Faults are injected at the botocore level, on the clients the handler makes
(``storage.new_client``), through the ``before-send`` event: a hook there may answer in place of
the server (a 503, a 500), raise what botocore's HTTP layer raises for a timeout or a reset, or
send the request itself and break the response body part-way. botocore's retry logic sees each
of these exactly as it would see the real thing, so ``storage.CLIENT_CONFIG`` is what is tested.
Against the moto *server* (real HTTP) nothing else answers a request the hook has answered;
under ``mock_aws`` moto's own ``before-send`` stub would still execute it.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError

from handler import storage
from localrun.invoke import put_event
from tests.support import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: What a fault does with one attempt of one request: return a response in the server's place,
#: raise, or return ``None`` to let the request through untouched.
Fault = Callable[[AWSPreparedRequest], AWSResponse | None]


# --- events and objects --------------------------------------------------------------------------


def store_directly(key: str, body: bytes, *, sequencer: str) -> dict[str, Any]:
    """Like ``upload``, but straight into the in-process moto server's store, bypassing HTTP:
    for seeding many objects fast where the upload itself is not under test."""
    stored = _moto_store().put_object(BUCKET, key, body)
    version = None if stored.version_id in (None, "null") else stored.version_id
    return put_event(
        BUCKET,
        key,
        etag=stored.etag.strip('"'),
        size=len(body),
        sequencer=sequencer,
        version_id=version,
    )


def read_directly(key: str) -> dict[str, Any]:
    """A result object read straight from the in-process moto server's store (exact decimals)."""
    stored = _moto_store().get_object(BUCKET, key)
    assert stored is not None, f"no object {key}"
    document: dict[str, Any] = json.loads(stored.value, parse_float=Decimal)
    return document


def _moto_store() -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def combine(*events: dict[str, Any]) -> dict[str, Any]:
    """One event carrying the records of several, in order (S3 may batch records so)."""
    return {"Records": [record for event in events for record in event["Records"]]}


def market(prices: list[str], **extra: str) -> bytes:
    """A market document with the prices given as JSON number text (kept exact)."""
    products = ", ".join(
        "{" + ", ".join([*(f'"{k}": "{v}"' for k, v in extra.items()), f'"price": {p}']) + "}"
        for p in prices
    )
    return f'{{"products": [{products}]}}'.encode()


def on_handler_clients(
    monkeypatch: pytest.MonkeyPatch, install: Callable[[S3Client], None]
) -> None:
    """Run ``install`` on every client the handler makes (``storage.new_client``) from now on."""
    make_client = storage.new_client

    def instrumented() -> S3Client:
        client = make_client()
        install(client)
        return client

    monkeypatch.setattr(storage, "new_client", instrumented)


def result_exists(client: S3Client, key: str) -> bool:
    return bool(client.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount"))


# --- faults --------------------------------------------------------------------------------------


class _Raw:
    """The ``raw`` of a response made up in the server's place (what botocore reads of it)."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()

    def read(self, amt: int | None = None) -> bytes:
        return self._body.read(amt)

    def close(self) -> None:
        self._body.close()


def error_status(status: int, code: str) -> Fault:
    """S3 answers ``status`` with the error ``code`` (``503 SlowDown``, ``500 InternalError``)."""

    def fault(request: AWSPreparedRequest) -> AWSResponse:
        body = b"" if request.method == "HEAD" else _error_xml(code)
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/xml"
        headers["Content-Length"] = str(len(body))
        return AWSResponse(request.url, status, headers, _Raw(body))

    return fault


def _error_xml(code: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>injected {code}</Message><RequestId>FAULT</RequestId></Error>"
    ).encode()


def read_timeout(request: AWSPreparedRequest) -> AWSResponse:
    """No answer within the read timeout (what botocore's HTTP layer raises for it)."""
    raise ReadTimeoutError(endpoint_url=request.url, error="injected read timeout")


def connection_reset(request: AWSPreparedRequest) -> AWSResponse:
    """The connection is reset before an answer arrives."""
    reset = ConnectionResetError(104, "Connection reset by peer")
    raise ConnectionClosedError(
        endpoint_url=request.url, error=ProtocolError("Connection aborted.", reset)
    )


def _send(request: AWSPreparedRequest) -> AWSResponse:
    """Send ``request`` to the server for real, outside the client's own connection pool."""
    session = URLLib3Session()
    try:
        return session.send(request)
    finally:
        if not request.stream_output:
            session.close()


def lost_response(request: AWSPreparedRequest) -> AWSResponse:
    """The server does the request, but its answer never arrives (a read timeout)."""
    _send(request).content  # noqa: B018 - read the answer through, then drop it
    return read_timeout(request)


def cut_body(after_bytes: int, error: BaseException) -> Fault:
    """The server answers, but the body breaks with ``error`` after ``after_bytes`` bytes,
    raised where urllib3 raises it (botocore's ``StreamingBody`` translates it)."""

    def fault(request: AWSPreparedRequest) -> AWSResponse:
        response = _send(request)
        response.raw = _BreakingStream(response.raw, after_bytes, error)
        return response

    return fault


class _BreakingStream:
    """A urllib3 response body that fails part-way."""

    def __init__(self, raw: Any, limit: int, error: BaseException) -> None:
        self._raw = raw
        self._left = limit
        self._error = error

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0:
            raise self._error
        chunk: bytes = self._raw.read(self._left if amt is None else min(amt, self._left))
        self._left -= len(chunk)
        return chunk

    def stream(self, amt: int = 2**16, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk

    def close(self) -> None:
        self._raw.close()


def stream_reset() -> ProtocolError:
    """What urllib3 raises when the peer resets the connection while a body streams."""
    reset = ConnectionResetError(104, "Connection reset by peer")
    return ProtocolError(f"Connection broken: {reset!r}", reset)


def stream_timeout() -> URLLib3ReadTimeoutError:
    """What urllib3 raises when a body stalls beyond the read timeout."""
    return URLLib3ReadTimeoutError(None, "/", "Read timed out.")  # type: ignore[arg-type]


def _object_key(url: str) -> str:
    """The object key a request URL names, path-style (``/bucket/key``, as to a moto server) or
    virtual-hosted (``bucket.s3.amazonaws.com/key``, as under ``mock_aws``)."""
    parts = urlsplit(url)
    path = unquote(parts.path).removeprefix("/")
    virtual_hosted = (parts.hostname or "").partition(".")[2].startswith("s3")
    return path if virtual_hosted else path.partition("/")[2]


@dataclass
class _Rule:
    operation: str
    key: str | None
    faults: list[Fault]
    forever: bool


@dataclass
class FaultInjector:
    """Faults for the S3 calls of the handler's clients, and a count of every attempt.

    ``attempts`` counts HTTP attempts per ``(operation, key)`` (botocore retries included).
    """

    rules: list[_Rule] = field(default_factory=list)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def once(self, operation: str, *faults: Fault, key: str | None = None) -> None:
        """The next attempts of ``operation`` (on ``key``, or any key) meet ``faults`` in turn."""
        self.rules.append(_Rule(operation, key, list(faults), forever=False))

    def always(self, operation: str, fault: Fault, *, key: str | None = None) -> None:
        """Every attempt of ``operation`` (on ``key``, or any key) meets ``fault``."""
        self.rules.append(_Rule(operation, key, [fault], forever=True))

    def clear(self) -> None:
        self.rules.clear()

    def install(self, client: S3Client) -> None:
        # First, so that no other before-send handler acts on a request a fault has answered.
        hook = cast("Callable[..., None]", self._before_send)  # the stubs' type, too narrow
        client.meta.events.register_first("before-send.s3", hook)

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str, **_: Any
    ) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[1]
        key = _object_key(request.url)
        with self._lock:
            self.attempts[operation, key] += 1
            fault = self._next_fault(operation, key)
        return fault(request) if fault else None

    def _next_fault(self, operation: str, key: str) -> Fault | None:
        for rule in self.rules:
            if rule.operation == operation and rule.key in (None, key) and rule.faults:
                return rule.faults[0] if rule.forever else rule.faults.pop(0)
        return None


# --- faults on the wire --------------------------------------------------------------------------


class BreakingProxy:
    """A TCP proxy on loopback in front of the moto server that breaks, once, the response to a
    GET of one key after ``after_bytes`` bytes: with a reset (RST) or by stalling until closed.

    Requests are recognised by their first line in one ``recv``, which holds for the small
    requests botocore sends; everything else is passed through untouched.
    """

    def __init__(self, upstream: str, key: str, after_bytes: int, *, stall: bool) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._target = f"GET /{BUCKET}/{quote(key)}".encode()
        self._after = after_bytes
        self._stall = stall
        self._stop = threading.Event()
        self.broken = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                client, _ = self._listener.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._upstream)
        watching = threading.Event()  # the request in flight is the GET to break
        reader = threading.Thread(
            target=self._requests, args=(client, upstream, watching), daemon=True
        )
        reader.start()
        sent = 0
        with contextlib.suppress(OSError), client, upstream:
            while data := upstream.recv(65536):
                if watching.is_set() and not self.broken.is_set():
                    if sent + len(data) > self._after:
                        client.sendall(data[: self._after - sent])
                        self._break(client, reader)
                        return
                    sent += len(data)
                client.sendall(data)

    def _requests(
        self, client: socket.socket, upstream: socket.socket, watching: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if data[:1].isupper():  # a request line starts here
                    if data.startswith(self._target):
                        watching.set()
                    else:
                        watching.clear()
                upstream.sendall(data)

    def _break(self, client: socket.socket, reader: threading.Thread) -> None:
        self.broken.set()
        if self._stall:
            self._stop.wait()
            return
        # SO_LINGER 0: the close that follows sends a reset instead of an orderly FIN. The close
        # only reaches TCP once no thread is still blocked reading the socket: wake the reader.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.shutdown(socket.SHUT_RD)
        reader.join(timeout=5)
