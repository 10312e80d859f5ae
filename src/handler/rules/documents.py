"""Pure rules about results: what a result says of its source, when it was computed, and the
result document itself. Where it goes is ``Settings.result_target``; which event is later is
``ordering``'s business.

Kept apart from S3 I/O so each rule can be tested on its own, and apart from ``totals`` because
these rules are about events and objects, not about parsing prices.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from handler.totals import InvalidDocument, Total, format_total


@dataclass(frozen=True)
class SourceInfo:
    """The object version that was read: the ``source`` member of every result."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None  # None where the event named none and S3 would not serve the object
    sequencer: str | None
    size: int | None  # None where S3 would not serve the object (an ``unreadable`` result)


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``: ``2026-11-21T20:35:25.123Z``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ok_document(total: Total, source: SourceInfo, computed_at: str) -> bytes:
    """The ``status: ok`` result.

    ``json`` cannot write a ``Decimal`` as a number without going through ``float``, so the total
    is spliced in as its exact plain-notation text; everything else goes through ``json.dumps``.
    """
    rest = json.dumps(
        {
            "product_count": total.product_count,
            "source": asdict(source),
            "computed_at": computed_at,
        },
        ensure_ascii=False,
    )
    head = f'{{"status": "ok", "total": {format_total(total.total)}, '
    return (head + rest[1:]).encode()


def invalid_document(error: InvalidDocument, source: SourceInfo, computed_at: str) -> bytes:
    """The ``status: invalid`` result for input that can never succeed."""
    return _error_document("invalid", error.code, error.message, source, computed_at)


def unreadable_document(code: str, message: str, source: SourceInfo, computed_at: str) -> bytes:
    """The ``status: unreadable`` result for an object S3 will not serve as it is (archived,
    customer-key encrypted, a key it refuses): ``code`` says why, ``message`` is S3's."""
    return _error_document("unreadable", code, message, source, computed_at)


def _error_document(
    status: str, code: str, message: str, source: SourceInfo, computed_at: str
) -> bytes:
    document = {
        "status": status,
        "error": {"code": code, "message": message},
        "source": asdict(source),
        "computed_at": computed_at,
    }
    return json.dumps(document, ensure_ascii=False).encode()
