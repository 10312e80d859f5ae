"""The pure core: JSON bytes stream in, the exact total of the products' prices comes out.

Nothing here knows of S3 or Lambda. The document is parsed as a stream, so memory stays flat
however large the object: a 1 GB document would need about 8 GB as a ``json.loads`` tree. Numbers
are read from their text as ``int`` or ``Decimal`` (never ``float``) and added in a decimal
context that traps any rounding, so the total is exact.

Two parsers share the work, and one of them alone decides what a document means:

- The **exact path** is ijson's yajl2 C parser, fed with push calls, and a Python state machine
  over its events (``_walk``). It checks the schema (CONTRACT.md, "Input") while streaming, so the
  first problem met reading from the start is the one reported, with its place
  (``products[3].price``). Every error code and message comes from it.
- The **fast path** takes over inside the ``products`` array, at a product boundary the exact
  path has reached: it cuts the bytes ahead into batches of whole products and decodes each batch
  with msgspec (C, about four times the exact path's speed; profiling showed the exact path spends
  its time creating and dispatching one Python tuple per JSON token). A batch is accepted only
  where the exact path would provably accept it with the same sum; anything unusual (a parse or
  schema error, a wrong cut, non-UTF-8, a possible duplicate ``price``, a total needing too many
  digits) sends that batch back to the exact path, which reports the precise first problem. So
  the fast path changes speed, never an outcome: ``tests/test_totals_fastpath.py`` pins this.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final, Literal, Protocol

import ijson
import msgspec

ErrorCode = Literal["InvalidJSON", "InvalidSchema", "TooLarge"]

#: Significant digits the running total may reach before it could no longer be exact. Prices of up
#: to 50 significant digits at any sensible mix of scales stay far below it; a hostile document
#: (``1e999999 + 1``) is refused instead of allocating a million-digit number.
MAX_TOTAL_DIGITS: Final = 2_000

#: Bytes asked of the stream per read: large enough that the per-read Python cost disappears,
#: small enough to keep memory flat.
READ_SIZE: Final = 256 * 1024

#: The most bytes held back for one batch of the fast path: a product larger than this (or a run
#: of bytes with no product boundary) goes through the exact path, so memory stays bounded.
_MAX_BATCH: Final = 4 * READ_SIZE

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

Event = tuple[str, Any]


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


def total_prices(stream: BinaryReader) -> Total:
    """Stream ``stream`` to its end and return the exact total of ``products[*].price``.

    Raises ``InvalidDocument`` for input that is not UTF-8 JSON of the contract's shape. Errors
    raised by ``stream.read`` itself (a dropped connection) propagate unchanged: they are not the
    document's fault, and must not be answered as if they were.
    """
    return _total(stream, fast=True)


def _total(stream: BinaryReader, *, fast: bool, read_size: int = READ_SIZE) -> Total:
    """``total_prices``, with the fast path switchable (tests compare both) and a smaller read
    size (tests put batch boundaries everywhere)."""
    return _walk(_Source(stream, fast=fast, read_size=read_size))


class _Product(msgspec.Struct, gc=False):
    # ``Any`` (not ``Decimal``): msgspec would also turn the string "1.5" into a Decimal, which the
    # contract refuses. Untyped floats go through float_hook, which gets the number's exact text.
    price: Any


_BATCH_DECODER: Final = msgspec.json.Decoder(list[_Product], float_hook=Decimal)
_price_of: Final = attrgetter("price")
# What ijson gives for a JSON number (bool is excluded: it would add as 0 or 1).
_NUMBER_TYPES: Final = frozenset({int, Decimal})
_PRICE_KEY: Final = b'"price"'
# A key can spell "price" with escapes only by one of these (JSON escapes are \uXXXX).
_PRICE_LETTER_ESCAPES: Final = (b"\\u0070", b"\\u0072", b"\\u0069", b"\\u0063", b"\\u0065")


def _decode_batch(batch: bytes, total: Decimal) -> tuple[int, Decimal] | None:
    """The fast path for ``batch`` (bytes that should be whole products separated by commas):
    the number of products and the new running total, or ``None`` for the exact path to decide.

    Accepts only what the exact path would accept with the same sum.
    """
    if not _plain(batch):
        return None
    try:
        products = _BATCH_DECODER.decode(b"[" + batch + b"]")
        # msgspec keeps the last of duplicate keys: more 'price' keys than products means one
        # of them may be a duplicate (or merely nested, or inside a string: look closer).
        if batch.count(_PRICE_KEY) != len(products):
            return None
        prices = list(map(_price_of, products))
        if not _NUMBER_TYPES.issuperset(map(type, prices)):
            return None
        # One by one in document order, as the exact path adds: a different grouping could
        # avoid an intermediate sum that the exact path refuses.
        with decimal.localcontext(_EXACT):
            total = sum(prices, total)
    except (msgspec.MsgspecError, ArithmeticError, ValueError):
        # Not JSON, not the schema, an exponent beyond Decimal's range, a total too long.
        return None
    return len(products), total


def _plain(batch: bytes) -> bool:
    """Whether ``batch`` is UTF-8 (msgspec does not check inside strings; ijson does) and every
    key it has that could be 'price' is written without escapes, so that counting finds all."""
    if not batch.isascii():
        try:
            batch.decode()
        except UnicodeDecodeError:
            return False
    # A lone backslash is found by memchr, several times faster than any two-byte pattern.
    return b"\\" not in batch or not any(escape in batch for escape in _PRICE_LETTER_ESCAPES)


class _Source:
    """The document's bytes, fed to the exact parser in slices, and skipped over in batches by
    the fast path where the walker allows it.

    Every byte goes either to the exact parser, in document order, or into a batch the fast path
    accepted; the parser's state after a product is the same however many products were skipped,
    so the exact path can always resume. ``stream.read`` is called only here, outside any
    ``except`` that turns errors into ``InvalidDocument``.
    """

    def __init__(self, stream: BinaryReader, *, fast: bool, read_size: int) -> None:
        self._stream = stream
        self._fast = fast
        self._read_size = read_size
        self._max_batch = 4 * read_size
        self._buf = b""
        self._pos = 0  # the first byte not yet fed nor skipped
        self._eof = False
        self._first = True
        self.bytes_read = 0
        self._events: list[Event] = ijson.sendable_list()
        self._parser = ijson.basic_parse_coro(self._events, use_float=False)
        # Set by the walker while it reads the products array: slices then end at candidate
        # product boundaries ('}' then ','), where the fast path may take over.
        self.in_products = False
        # True while the walker holds the last event of a slice that ended at such a boundary.
        self.at_cut = False
        self._fed_to_cut = False
        # The exact path alone reads up to here: the fast path refused these bytes.
        self._exact_until = 0

    def _read(self) -> bool:
        """Append the next read to the buffer (dropping what was consumed); False at the end."""
        if self._eof:
            return False
        if self._first and not self.bytes_read:
            # ijson's own reader began with a 0-byte read; the stream sees the same calls as
            # before (stub streams in tests count them).
            self._stream.read(0)
        data = self._stream.read(self._read_size)
        self.bytes_read += len(data)
        if not data:
            self._eof = True
            return False
        if self._first:
            # RFC 8259 lets a parser ignore a leading UTF-8 BOM, which Windows tools like to
            # write; a stream may hand it out over several reads.
            while len(data) < len(_BOM) and _BOM.startswith(data):
                more = self._stream.read(self._read_size)
                if not more:
                    break
                self.bytes_read += len(more)
                data += more
            self._first = False
            data = data.removeprefix(_BOM)
            if not data:
                return self._read()
        self._exact_until -= self._pos
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        return True

    def events(self) -> Iterator[Event]:
        """The exact parser's events, slice by slice, to the end of the document."""
        pending = self._events
        while True:
            self.at_cut = False
            ended = self._pos >= len(self._buf) and not self._read()
            # At the end the parser is closed: a truncated document fails there.
            error = self._push(None if ended else self._next_slice())
            if error is not None:
                # The events before the error come first: the first problem decides.
                yield from pending[:]
                raise error
            if ended:
                yield from pending[:]
                return
            if not pending:
                continue
            events = pending[:]
            del pending[:]
            last = events.pop()
            yield from events
            self.at_cut = self._fed_to_cut
            yield last

    def _next_slice(self) -> bytes:
        buf, start = self._buf, self._pos
        end = len(buf)
        self._fed_to_cut = False
        if self.in_products and self._fast:
            # Up to the first boundary candidate only: a slice with no '},' inside cannot hide
            # a product's end behind the start of a string.
            cut = buf.find(b"},", start, end)
            if cut != -1:
                end = cut + 1
                self._fed_to_cut = end > self._exact_until
        self._pos = end
        return buf[start:end]

    def fast_forward(self, count: int, total: Decimal) -> tuple[int, Decimal]:
        """At a product boundary (the parser has consumed a product's '}' and nothing after it):
        skip whole batches of products the fast path accepts; return the new count and total.

        The byte at ``_pos`` is the ',' after that product; it stays unconsumed, so that after
        any number of batches the parser, should it resume, sees ',' just as it would have.
        """
        while True:
            end = self._batch_end()
            if end == -1:
                return count, total
            outcome = _decode_batch(self._buf[self._pos + 1 : end], total)
            if outcome is None:
                self._exact_until = end
                return count, total
            count += outcome[0]
            total = outcome[1]
            self._pos = end

    def _batch_end(self) -> int:
        """The end (just after a '}' followed by ',') of the largest batch from ``_pos`` whose
        braces balance, reading more as needed; -1 where there is none within ``_max_batch``."""
        while True:
            if len(self._buf) - self._pos < self._read_size:
                self._read()
            buf, start = self._buf, self._pos + 1
            cut = buf.rfind(b"},", start)
            # Balanced braces make it likely the cut is between products, not inside one;
            # msgspec's decode is what proves it.
            opened = buf.count(b"{", start, cut + 1)
            closed = buf.count(b"}", start, cut + 1)
            for _ in range(64):
                if cut == -1 or opened == closed:
                    break
                previous = buf.rfind(b"},", start, cut)
                opened -= buf.count(b"{", previous + 1, cut + 1)
                closed -= buf.count(b"}", previous + 1, cut + 1)
                cut = previous
            if cut != -1 and opened == closed:
                return cut + 1
            if self._eof or len(buf) - self._pos >= self._max_batch:
                return -1
            if not self._read():
                return -1

    def _push(self, data: bytes | None) -> Exception | None:
        """Give ``data`` to the exact parser (``None``: the document ended); return the error it
        raised, for ``events`` to raise after the events that came before it."""
        try:
            if data is None:
                self._parser.close()
            else:
                self._parser.send(data)
        except Exception as exc:  # noqa: BLE001 - mapped to InvalidDocument or re-raised
            if isinstance(exc, SystemError) and isinstance(exc.__cause__, ValueError):
                # yajl2_c appended the event of the number it failed to convert half-built:
                # drop it unseen (reading it crashes the interpreter); the others are sound.
                del self._events[-1:]
            return self._parse_error(exc)
        return None

    def _parse_error(self, exc: Exception) -> Exception:
        """The ``InvalidDocument`` for an error of the exact parser (anything else unchanged)."""
        if isinstance(exc, ijson.IncompleteJSONError):
            if self.bytes_read == 0:
                return InvalidDocument("InvalidJSON", "the document is empty")
            return InvalidDocument("InvalidJSON", _yajl_message(exc))
        if isinstance(exc, UnicodeDecodeError):
            return InvalidDocument("InvalidJSON", "the document is not valid UTF-8")
        if isinstance(exc, decimal.InvalidOperation):
            # yajl2_c builds a Decimal for every non-integer number; an exponent beyond what
            # Decimal can hold (1e999999999999999999) fails there, before we see the event.
            return InvalidDocument(
                "InvalidSchema", "a number's exponent is beyond the supported range"
            )
        if isinstance(exc, SystemError) and isinstance(exc.__cause__, ValueError):
            # An integer of more digits than Python converts (4300); yajl2_c reports it as a
            # SystemError wrapping the ValueError.
            return InvalidDocument("InvalidSchema", "a number has more digits than supported")
        return exc


def _yajl_message(exc: Exception) -> str:
    """The first line of yajl's message: the rest quotes the document, which we keep out of
    results and logs."""
    raw: Any = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    first = text.strip().splitlines()[0] if text.strip() else "malformed JSON"
    if "UTF8" in first:
        return "the document is not valid UTF-8"
    return f"not valid JSON ({first.rstrip('.')})"


def _walk(source: _Source) -> Total:
    """Check the event stream against the schema while adding up the prices.

    A flat state machine rather than a recursive descent: it runs once per JSON token of the
    parts the fast path leaves to it, so it keeps the work per event small.
    """
    events = source.events()
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
        source.in_products = True
        count, total = _walk_products(events, source)
        source.in_products = False
    # Drain to the end: trailing garbage or a truncated document must still be caught.
    for _ in events:
        pass
    if not seen_products:
        raise _schema("document", "missing key 'products'")
    return Total(total=total, product_count=count)


def _walk_products(events: Iterator[Event], source: _Source) -> tuple[int, Decimal]:
    """Consume the products array (its ``start_array`` already read): its count and total."""
    total = Decimal(0)
    count = 0
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
        if source.at_cut:  # this product's '}' ended the parser's input: skip ahead
            count, total = source.fast_forward(count, total)
    return count, total


def _product_price(events: Iterator[Event], index: int) -> Decimal | int:
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


def _skip_value(events: Iterator[Event]) -> None:
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
