"""Logger, Metrics and (optional) Tracer, set up once per process.

Each has a default so the function works with no environment variables; the ``POWERTOOLS_*``
variables of the template override them. The Tracer is only imported when tracing is switched on,
because importing the X-Ray SDK costs a few hundred milliseconds of cold start for nothing when it
is off.
"""

from __future__ import annotations

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


def tracing_enabled() -> bool:
    """Tracing is on only where ``POWERTOOLS_TRACE_DISABLED`` is explicitly false (the template
    sets it from its tracing parameter); with the variable unset it is off."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in ("false", "0")


def traced(handler: F) -> F:
    """Wrap ``handler`` in Tracer's ``capture_lambda_handler`` where tracing is on; else return it
    unchanged, without importing the X-Ray SDK."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - imported only when tracing is on

    return cast("F", Tracer(service=_service).capture_lambda_handler(handler))
