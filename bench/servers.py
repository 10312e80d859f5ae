"""The S3 the benchmarks run against: a moto server on loopback in its own process
(``s3server.py``: ranged GETs served from the range), and a throttling proxy in front of it
(``proxy.py``) that behaves like S3 seen from Lambda. Each in its own process, so that neither
is counted in the measured process's time or memory."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: What the proxy gives each connection: S3 gives one GET stream about 50-100 MB/s in Lambda;
#: the benchmark takes the low end, and S3's typical time to first byte.
STREAM_BYTES_PER_SECOND = 40_000_000
FIRST_BYTE_SECONDS = 0.020


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int) -> None:
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """The moto server's endpoint while it runs."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "s3server.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextlib.contextmanager
def throttled(endpoint: str) -> Iterator[str]:
    """An endpoint in front of ``endpoint`` that caps each connection and delays each
    response's first byte (``STREAM_BYTES_PER_SECOND``, ``FIRST_BYTE_SECONDS``)."""
    upstream = endpoint.rsplit(":", 1)[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "proxy.py"),
            upstream,
            str(STREAM_BYTES_PER_SECOND),
            str(FIRST_BYTE_SECONDS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        _wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
