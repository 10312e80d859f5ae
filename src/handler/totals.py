"""The pure core: JSON bytes stream in, the exact total of the products' prices comes out.

Nothing here knows of S3 or Lambda. The document is parsed as a stream of events (ijson on its
yajl2 C backend), so memory stays flat however large the object: a 1 GB document would need about
8 GB as a ``json.loads`` tree. Numbers arrive from the parser as ``int`` or ``Decimal`` (never
``float``) and are added in a decimal context that traps any rounding, so the total is exact.

The schema (CONTRACT.md, "Input") is checked while streaming, so the first problem met reading the
document from the start is the one reported, with the place it was met (``products[3].price``).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

import ijson

ErrorCode = Literal["InvalidJSON", "InvalidSchema", "TooLarge"]

#: Significant digits the running total may reach before it could no longer be exact. Prices of up
#: to 50 significant digits at any sensible mix of scales stay far below it; a hostile document
#: (``1e999999 + 1``) is refused instead of allocating a million-digit number.
MAX_TOTAL_DIGITS: Final = 2_000

#: Bytes asked of the stream per read: large enough that the per-read Python cost disappears,
#: small enough to keep memory flat.
READ_SIZE: Final = 256 * 1024

_BOM: Final = b"\xef\xbb\xbf"

_EXACT: Final = decimal.Context(
    prec=MAX_TOTAL_DIGITS,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    # Any rounding would make the total inexact: fail instead of rounding.
    traps=[decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.InvalidOperation],
)

_JSON_TYPE: Final = {
    "start_map": "an object",
    "start_array": "an array",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


class BinaryReader(Protocol):
    """What the core reads from: anything with ``read(size)`` returning bytes (a file, a
    ``botocore`` streaming body, ``io.BytesIO``)."""

    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Total:
    """The outcome of a valid document: the exact sum and how many products it had."""

    total: Decimal
    product_count: int


class InvalidDocument(Exception):
    """The input can never succeed (the same bytes fail the same way): answered, not retried."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message


def too_large(size: int, limit: int) -> InvalidDocument:
    """The ``TooLarge`` error, decided from the object's size before its body is read."""
    return InvalidDocument("TooLarge", f"the object has {size} bytes; the limit is {limit} bytes")


def format_total(total: Decimal) -> str:
    """Plain notation (never an exponent), keeping the scale: ``Decimal('4.00E+2')`` -> ``400``,
    ``Decimal('400.00')`` -> ``400.00``."""
    return format(total, "f")


class _CountingReader:
    """Counts the bytes read (for metrics and the "empty" message) and drops a leading UTF-8 BOM,
    which RFC 8259 lets a parser ignore and which Windows tools like to write."""

    __slots__ = ("_first", "_stream", "bytes_read")

    def __init__(self, stream: BinaryReader) -> None:
        self._stream = stream
        self.bytes_read = 0
        self._first = True

    def read(self, size: int = READ_SIZE) -> bytes:
        data = self._stream.read(size)
        self.bytes_read += len(data)
        # ijson first reads 0 bytes to learn the stream's type: look for the BOM in the first data.
        # A BOM split over two reads is not handled: no real stream returns 1 or 2 bytes first.
        if self._first and data:
            self._first = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :] or self.read(size)
        return data


def total_prices(stream: BinaryReader) -> Total:
    """Stream ``stream`` to its end and return the exact total of ``products[*].price``.

    Raises ``InvalidDocument`` for input that is not UTF-8 JSON of the contract's shape. Errors
    raised by ``stream.read`` itself (a dropped connection) propagate unchanged: they are not the
    document's fault, and must not be answered as if they were.
    """
    reader = _CountingReader(stream)
    try:
        return _walk(ijson.basic_parse(reader, buf_size=READ_SIZE, use_float=False))
    except ijson.IncompleteJSONError as exc:
        if reader.bytes_read == 0:
            raise InvalidDocument("InvalidJSON", "the document is empty") from None
        raise InvalidDocument("InvalidJSON", _yajl_message(exc)) from None
    except UnicodeDecodeError:
        raise InvalidDocument("InvalidJSON", "the document is not valid UTF-8") from None
    except decimal.InvalidOperation:
        # yajl2_c builds a Decimal for every non-integer number; an exponent beyond what Decimal
        # can hold (1e999999999999999999) fails there, before we see the event.
        raise InvalidDocument(
            "InvalidSchema", "a number's exponent is beyond the supported range"
        ) from None


def _yajl_message(exc: Exception) -> str:
    """The first line of yajl's message: the rest quotes the document, which we keep out of
    results and logs."""
    raw: Any = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    first = text.strip().splitlines()[0] if text.strip() else "malformed JSON"
    if "UTF8" in first:
        return "the document is not valid UTF-8"
    return f"not valid JSON ({first.rstrip('.')})"


def _walk(events: Iterator[tuple[str, Any]]) -> Total:
    """Check the event stream against the schema while adding up the prices.

    A flat state machine rather than a recursive descent: it runs once per JSON token of a
    possibly gigabyte-sized document, so it keeps the work per event small.
    """
    ev, _ = next(events)
    if ev != "start_map":
        raise _schema("document", f"expected an object, got {_JSON_TYPE[ev]}")

    total = Decimal(0)
    count = 0
    seen_products = False
    for ev, value in events:
        if ev == "end_map":  # the root object is closed: the document is complete
            break
        # ev is a root-level "map_key"
        if value != "products":
            _skip_value(events)
            continue
        if seen_products:
            raise _schema("products", "duplicate key")
        seen_products = True
        kind, _ = next(events)
        if kind != "start_array":
            raise _schema("products", f"expected an array, got {_JSON_TYPE[kind]}")
        for item, _ in events:
            if item == "end_array":
                break
            if item != "start_map":
                raise _schema(f"products[{count}]", f"expected an object, got {_JSON_TYPE[item]}")
            price = _product_price(events, count)
            try:
                total = _EXACT.add(total, price)
            except decimal.DecimalException:
                raise _schema(
                    f"products[{count}].price",
                    f"the exact total would need more than {MAX_TOTAL_DIGITS} significant digits",
                ) from None
            count += 1
    # Drain to the end: trailing garbage or a truncated document must still be caught.
    for _ in events:
        pass
    if not seen_products:
        raise _schema("document", "missing key 'products'")
    return Total(total=total, product_count=count)


def _product_price(events: Iterator[tuple[str, Any]], index: int) -> Decimal | int:
    """Consume one product object (its ``start_map`` already read); return its price."""
    price: Decimal | int | None = None
    for ev, value in events:
        if ev == "end_map":
            if price is None:
                raise _schema(f"products[{index}]", "missing key 'price'")
            return price
        if value != "price":
            _skip_value(events)
            continue
        if price is not None:
            raise _schema(f"products[{index}].price", "duplicate key")
        kind, price = next(events)
        if kind != "number":
            raise _schema(f"products[{index}].price", f"expected a number, got {_JSON_TYPE[kind]}")
    raise AssertionError("unreachable: the parser ends every object it starts")  # pragma: no cover


def _skip_value(events: Iterator[tuple[str, Any]]) -> None:
    """Consume one value of any kind: other keys, anywhere, are ignored."""
    depth = 0
    for ev, _ in events:
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
        if depth == 0:
            return


def _schema(place: str, problem: str) -> InvalidDocument:
    return InvalidDocument("InvalidSchema", f"{place}: {problem}")
