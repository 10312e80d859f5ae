"""The OpenTelemetry route of docs/configuration.md, offline: a real invocation (``make run``'s
script: an embedded S3, the handler, an S3 notification) with OTLP/HTTP pointed at a receiver on
loopback, which decodes what arrives with opentelemetry-proto. The S3 calls' spans must be there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ROOT = Path(__file__).resolve().parents[2]


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: each POST to /v1/traces is one protobuf request."""

    requests: list[ExportTraceServiceRequest] = []  # noqa: RUF012 - one receiver per test

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            Receiver.requests.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def spans_of(env: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """Runs one invocation with ``env``; (service, span name, string attributes) received."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "local_invoke.py")],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env},
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    found = []
    for request in Receiver.requests:
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    found.append((service, span.name, attributes))
    return found


def test_an_invocation_sends_the_spans_of_its_s3_calls_over_otlp(receiver: str) -> None:
    spans = spans_of({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver})

    names = {name for _, name, attributes in spans if attributes.get("rpc.service") == "S3"}
    assert {"S3.GetObject", "S3.PutObject"} <= names
    assert {service for service, _, _ in spans} == {"market-totals"}


def test_without_an_endpoint_nothing_is_sent(receiver: str) -> None:
    assert spans_of({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) == []
