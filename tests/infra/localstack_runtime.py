"""Start and stop LocalStack (S3, SQS, SNS and EventBridge) as a plain local process: no Docker.

Why LocalStack at all: the other tests run the handler against moto with events we wrote
ourselves, so an event shape we got wrong would be wrong on both sides and pass. LocalStack is an
emulator we did not build; its own notification code produces the S3 -> SQS, S3 -> SNS -> SQS and
S3 -> EventBridge events that ``make localstack-test`` hands to the handler.

Why a process from ``.venv-localstack``: LocalStack pins its own boto3, botocore and cryptography,
which must never move the function's pins, and it needs python3.13 (``make localstack-test``
builds that virtualenv from requirements-localstack.txt). Everything here is the standard library,
so the project's own ``.venv`` can import it.

Run on its own (``.venv/bin/python -m tests.infra.localstack_runtime``), it starts
LocalStack in the foreground and prints the variables that point the AWS CLI, boto3 or the
handler at it, until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

ROOT: Final = Path(__file__).resolve().parents[2]
VENV_PYTHON: Final = ROOT / ".venv-localstack" / "bin" / "python"
SERVICES: Final = ("s3", "sqs", "sns", "events")
#: A cold start (first import of LocalStack's packages) takes a few seconds here; two minutes
#: leaves room for a slow CI machine while still failing a run that will never come up.
READY_TIMEOUT: Final = 120.0
#: LocalStack answers SIGTERM by shutting its services down, which takes about five seconds.
STOP_TIMEOUT: Final = 30.0
#: How often a port taken between ``free_port`` and LocalStack's bind is tried again.
PORT_ATTEMPTS: Final = 3
# Settings of the caller's shell that would point LocalStack's own internal clients elsewhere.
_INHERITED_AWS_PREFIX: Final = "AWS_"


class LocalStackError(RuntimeError):
    """LocalStack did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    """A loopback port nobody listens on right now (LocalStack binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def localstack_environment(
    port: int,
    root: Path,
    base: Mapping[str, str],
    *,
    services: tuple[str, ...] = SERVICES,
    listen: str = "127.0.0.1",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the LocalStack process: loopback only, nothing fetched, state in
    ``root``.

    - ``OVERRIDE_IN_DOCKER=0``: where this machine is itself a container, LocalStack would
      otherwise use the shared ``/tmp/localstack`` and ``/var/lib/localstack`` instead of ``root``.
    - ``GATEWAY_LISTEN``/``LOCALSTACK_HOST``: listen on ``listen`` (loopback unless a Lambda
      container must reach it back), and write the loopback address
      (not ``localhost.localstack.cloud``, which needs DNS) into queue URLs and SNS links.
    - ``SQS_ENDPOINT_STRATEGY=path``: queue URLs on the gateway's own host and port.
    - ``DNS_ADDRESS=0``: LocalStack's DNS server would look up an upstream resolver on the net.
    - ``DISABLE_EVENTS``, ``SKIP_SSL_CERT_DOWNLOAD``, ``SKIP_INFRA_DOWNLOADS``: no analytics and
      no downloads (the machine reaches package registries only).
    - ``FILESYSTEM_ROOT``/``TMPDIR``: every file it writes stays in ``root``, removed afterwards.
    - ``EAGER_SERVICE_LOADING``: the services start before health reports ready, so the first
      test does not pay for their start (or time out on it).
    - The caller's ``AWS_*`` variables are dropped: they are for clients of LocalStack, not for
      LocalStack's internal clients.
    - ``extra`` last: what the deployed chain adds (Lambda's settings,
    tests/infra/deployed/chain.py).
    """
    env = {
        name: value for name, value in base.items() if not name.startswith(_INHERITED_AWS_PREFIX)
    }
    env.update(
        SERVICES=",".join(services),
        OVERRIDE_IN_DOCKER="0",
        GATEWAY_LISTEN=f"{listen}:{port}",
        LOCALSTACK_HOST=f"127.0.0.1:{port}",
        SQS_ENDPOINT_STRATEGY="path",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SKIP_SSL_CERT_DOWNLOAD="1",
        SKIP_INFRA_DOWNLOADS="1",
        EAGER_SERVICE_LOADING="1",
        FILESYSTEM_ROOT=str(root),
        TMPDIR=str(root / "tmp"),
    )
    env.update(extra or {})
    return env


def health(endpoint: str) -> dict[str, str] | None:
    """LocalStack's ``/_localstack/health`` service states, or ``None`` while it does not answer."""
    # The endpoint is the loopback address this module started LocalStack on.
    request = urllib.request.Request(f"{endpoint}/_localstack/health")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            document = json.loads(response.read())
    except (OSError, ValueError):
        return None
    services = document.get("services") if isinstance(document, dict) else None
    return {str(k): str(v) for k, v in services.items()} if isinstance(services, dict) else None


def is_ready(states: Mapping[str, str] | None, services: tuple[str, ...] = SERVICES) -> bool:
    """Whether every service the tests use reports ``available`` or ``running``."""
    return states is not None and all(
        states.get(name) in ("available", "running") for name in services
    )


@dataclass
class LocalStackProcess:
    """A running LocalStack: its process, its endpoint and its log file."""

    process: subprocess.Popen[bytes]
    endpoint: str
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of LocalStack's output, for failure messages."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def port_taken(self) -> bool:
        """Whether LocalStack could not listen on its port. It does not exit then (it even logs
        "Ready."), so its log is what tells."""
        return "Address already in use" in self.log_path.read_text(
            encoding="utf-8", errors="replace"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate (LocalStack shuts its services down on SIGTERM), wait, then kill."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.log_file.close()


def start(
    root: Path,
    *,
    python: Path | None = None,
    timeout: float = READY_TIMEOUT,
    services: tuple[str, ...] = SERVICES,
    listen: str = "127.0.0.1",
    extra: Mapping[str, str] | None = None,
) -> LocalStackProcess:
    """Start LocalStack (``python``: default ``VENV_PYTHON``) with its state under ``root`` and
    wait (at most ``timeout`` seconds in all) until its services are ready. Raises
    ``LocalStackError`` with its log tail otherwise. ``services``, ``listen`` and ``extra``: see
    ``localstack_environment``."""
    python = python or VENV_PYTHON
    if not python.exists():
        raise LocalStackError(f"{python} is missing: `make localstack-test` creates it")
    deadline = time.monotonic() + timeout
    problem, log_tail = "did not start", ""
    for attempt in range(PORT_ATTEMPTS):
        run_root = root / f"run-{attempt}"
        (run_root / "tmp").mkdir(parents=True, exist_ok=True)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        log_path = run_root / "localstack.log"
        log_file = log_path.open("wb")
        # A fixed interpreter path and argument list: no shell, no user input.
        process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            cwd=run_root,
            env=localstack_environment(
                port, run_root, os.environ, services=services, listen=listen, extra=extra
            ),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        candidate = LocalStackProcess(process, endpoint, log_path, log_file)
        while time.monotonic() < deadline and process.poll() is None:
            if candidate.port_taken():
                break
            if is_ready(health(endpoint), services):
                return candidate
            time.sleep(0.25)
        exited, port_taken = process.poll(), candidate.port_taken()
        # Where the port was taken LocalStack hangs in its shutdown: no point waiting long.
        candidate.stop(timeout=5 if port_taken else STOP_TIMEOUT)
        log_tail = candidate.log_tail()
        if port_taken:  # another process took it between free_port() and LocalStack's bind
            problem = f"could not listen on port {port}"
            continue
        problem = (
            f"was not ready within {timeout:.0f} s" if exited is None else f"exited ({exited})"
        )
        break
    raise LocalStackError(
        f"LocalStack ({', '.join(services)}) {problem}; last lines of its log:\n{log_tail}"
    )


@contextlib.contextmanager
def running(root: Path, *, timeout: float = READY_TIMEOUT) -> Iterator[LocalStackProcess]:
    """LocalStack for the length of a ``with`` block, stopped however the block ends."""
    localstack = start(root, timeout=timeout)
    try:
        yield localstack
    finally:
        localstack.stop()


def main() -> int:
    """Run LocalStack in the foreground until Ctrl-C, printing how to reach it."""
    with tempfile.TemporaryDirectory(prefix="localstack-") as root:
        try:
            with running(Path(root)) as localstack:
                print(f"LocalStack ({', '.join(SERVICES)}) at {localstack.endpoint}")
                print(f"export AWS_ENDPOINT_URL={localstack.endpoint}")
                print("export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
                print("export AWS_DEFAULT_REGION=us-east-1")
                print(f"log: {localstack.log_path} (Ctrl-C stops it)", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    localstack.process.wait()
        except LocalStackError as error:
            print(error, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
