"""Logger, Metrics and (optional) OpenTelemetry tracing, set up once per process.

Each has a default so the function works with no environment variables; the ``POWERTOOLS_*``
variables of the template override them.

Tracing needs no SDK in the package: with the template's ``Tracing: Active`` Lambda itself
records each invocation in X-Ray. The AWS X-Ray SDK (Powertools' ``[tracer]`` extra) is in
maintenance mode and is not packaged. Spans of the function's S3 calls come from
OpenTelemetry, where a deployment opts in (docs/configuration.md): with the OpenTelemetry
packages in the artifact (requirements-otel.txt) and ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, botocore
is instrumented and each invocation's spans are exported over OTLP/HTTP before it returns (a
frozen container sends nothing). Nothing of OpenTelemetry is imported otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

DEFAULT_SERVICE: Final = "market-totals"
DEFAULT_NAMESPACE: Final = "MarketTotals"

_service = os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE
logger: Final = Logger(service=_service)
metrics: Final = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
    service=_service,
)

F = TypeVar("F", bound=Callable[..., Any])


def otel_enabled() -> bool:
    """OpenTelemetry is wired where an OTLP endpoint is configured and the packages are there
    (the default artifact has none: then the setting alone changes nothing)."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")) and all(
        importlib.util.find_spec(name) is not None
        for name in ("opentelemetry.sdk", "opentelemetry.instrumentation.botocore")
    )


def _start_otel() -> Callable[[], object]:
    """A tracer provider exporting over OTLP/HTTP, botocore instrumented; returns its flush."""
    # Imported only here: OpenTelemetry is optional, and costs its import only where it is used.
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": _service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    BotocoreInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    return provider.force_flush


def traced(handler: F) -> F:
    """Where OpenTelemetry is enabled, instrument botocore and flush the spans after every
    invocation; else return ``handler`` unchanged (Lambda's active tracing needs nothing here)."""
    if not otel_enabled():
        return handler
    flush = _start_otel()

    @functools.wraps(handler)
    def flushing(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            flush()

    return cast("F", flushing)
