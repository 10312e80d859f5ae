"""The exact parser: ijson's yajl2_c backend, fed by push calls, with its errors turned into
``InvalidDocument``.

yajl checks the syntax and the UTF-8 of every byte it is given; ``source.Source`` decides which
bytes those are (all of them, in order, except batches the fast path accepted).
"""

from __future__ import annotations

import decimal
import sys
from typing import Any

import ijson

from handler.totals.outcome import InvalidDocument

#: One ijson event: ``("start_map", None)``, ``("number", Decimal("1.5"))``...
Event = tuple[str, Any]


class UnreadableNumber(InvalidDocument):
    """A number the parser could not convert (an integer of too many digits, an exponent beyond
    Decimal's range). It fails before its event exists, so the parser cannot say where it is;
    the walker, which knows, names the place with ``at``."""

    def __init__(self, problem: str) -> None:
        super().__init__("InvalidSchema", problem)

    def at(self, place: str) -> InvalidDocument:
        """The error as the document's answer: ``products[3].price: ...``."""
        return InvalidDocument(self.code, f"{place}: {self.message}")


class ValueTooLong(UnreadableNumber):
    """A value longer than ``MAX_VALUE_BYTES`` (``bounds``), or an ignored value nested deeper
    than ``MAX_DEPTH``: refused before it is read whole, and placed by the walker like an
    unreadable number."""


class Parser:
    """A push parser whose events collect in ``events`` until the caller takes them."""

    def __init__(self) -> None:
        self.events: list[Event] = ijson.sendable_list()
        self._coro = ijson.basic_parse_coro(self.events, use_float=False)

    def push(self, data: bytes | None, *, nothing_read: bool) -> Exception | None:
        """Give ``data`` to the parser (``None``: the document ended); return the error it raised,
        for the caller to raise after the events that came before it."""
        try:
            if data is None:
                self._coro.close()
            else:
                self._coro.send(data)
        except Exception as exc:  # noqa: BLE001 - mapped to InvalidDocument or re-raised
            if isinstance(exc, SystemError) and isinstance(exc.__cause__, ValueError):
                # yajl2_c appended the event of the number it failed to convert half-built:
                # drop it unseen (reading it crashes the interpreter); the others are sound.
                del self.events[-1:]
            return _parse_error(exc, nothing_read=nothing_read)
        return None


def _parse_error(exc: Exception, *, nothing_read: bool) -> Exception:
    """The ``InvalidDocument`` for an error of the parser (anything else unchanged)."""
    if isinstance(exc, ijson.IncompleteJSONError):
        if nothing_read:
            return InvalidDocument("InvalidJSON", "the document is empty")
        return InvalidDocument("InvalidJSON", _yajl_message(exc))
    if isinstance(exc, UnicodeDecodeError):
        return InvalidDocument("InvalidJSON", "the document is not valid UTF-8")
    if isinstance(exc, decimal.InvalidOperation):
        # yajl2_c builds a Decimal for every non-integer number; an exponent beyond what
        # Decimal can hold (1e999999999999999999) fails there, before we see the event.
        return UnreadableNumber("a number's exponent is beyond the supported range")
    if isinstance(exc, SystemError) and isinstance(exc.__cause__, ValueError):
        # An integer of more digits than Python converts (4300); yajl2_c reports it as a
        # SystemError wrapping the ValueError.
        return UnreadableNumber(
            f"an integer has more digits than the {sys.get_int_max_str_digits()} supported"
        )
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
