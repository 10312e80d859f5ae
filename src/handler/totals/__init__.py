"""The pure core: JSON bytes stream in, the exact total of the products' prices comes out.

Nothing here knows of S3 or Lambda. The document is parsed as a stream, so memory stays flat
however large the object: a 1 GB document would need about 8 GB as a ``json.loads`` tree. Numbers
are read from their text as ``int`` or ``Decimal`` (never ``float``) and added in a decimal
context that traps any rounding, so the total is exact.

Two parsers share the work, and one of them alone decides what a document means:

- The **exact path** (``parser``, ``exact``) is ijson's yajl2 C parser, fed with push calls, and a
  Python state machine over its events that checks the schema while streaming. Every error code
  and message comes from it.
- The **fast path** (``fast``) takes over inside the ``products`` array, at a product boundary the
  exact path has reached, and decodes whole batches of products with msgspec, several times
  faster. It accepts a batch only where the exact path would provably accept it with the same
  sum, so it changes speed, never an outcome.

``source`` holds the bytes and hands them to one path or the other; ``strict`` refuses the bytes
JSON forbids that yajl would take for whitespace; ``arithmetic`` is the decimal context both paths
add in; ``outcome`` is what the core answers. The behaviour is described in ``docs/behaviour.md``.

**Changing how the total is computed**: which products count is declared once, in ``rule``
(``PRICE``, ``READS``, ``counts``), and both paths derive from it: change it there alone.
``tests/unit/test_total_rule.py`` (in ``make quick``) fails loudly where the paths disagree on
generated products past ``READ_SIZE``; a change to how a price itself is read or added is one to
``exact.py`` and ``fast.py``, which ``tests/test_totals_fastpath.py`` compares.
``docs/development.md`` has the recipe.
"""

from __future__ import annotations

from handler.totals.arithmetic import MAX_TOTAL_DIGITS
from handler.totals.bounds import DEFAULT_MAX_VALUE_BYTES, MIN_MAX_VALUE_BYTES
from handler.totals.exact import walk
from handler.totals.outcome import ErrorCode, InvalidDocument, Total, format_total, too_large
from handler.totals.source import READ_SIZE, BinaryReader, Source

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "MAX_TOTAL_DIGITS",
    "MIN_MAX_VALUE_BYTES",
    "READ_SIZE",
    "BinaryReader",
    "ErrorCode",
    "InvalidDocument",
    "Total",
    "format_total",
    "too_large",
    "total_prices",
]


def total_prices(stream: BinaryReader, *, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> Total:
    """Stream ``stream`` to its end and return the exact total of ``products[*].price``.

    A single value (string, key, number) longer than ``max_value_bytes`` is refused
    (``InvalidSchema``) before it is read whole, so memory and time stay bounded whatever the
    document's shape.

    Raises ``InvalidDocument`` for input that is not UTF-8 JSON of the expected shape. Errors
    raised by ``stream.read`` itself (a dropped connection) propagate unchanged: they are not the
    document's fault, and must not be answered as if they were.
    """
    return _total(stream, fast=True, max_value_bytes=max_value_bytes)


def _total(
    stream: BinaryReader,
    *,
    fast: bool,
    read_size: int = READ_SIZE,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> Total:
    """``total_prices``, with the fast path switchable (tests compare both) and a smaller read
    size (tests put batch boundaries everywhere)."""
    return walk(Source(stream, fast=fast, read_size=read_size, max_value_bytes=max_value_bytes))
