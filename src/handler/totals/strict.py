"""Bytes that JSON never allows raw but the parsers would take for whitespace.

RFC 8259 whitespace is space, tab, LF and CR only, and a string must escape every control
character. yajl2_c also skips vertical tab and form feed between tokens, so a document such as
``\\x0c{"products": []}`` would be totalled. Both bytes are illegal anywhere in a JSON text (UTF-8
continuation bytes are 0x80 and above, so no character contains them): finding one raw is enough
to know the document is not JSON.
"""

from __future__ import annotations

from typing import Final

from handler.totals.outcome import InvalidDocument

#: The bytes refused wherever they appear, with their names for the message.
FORBIDDEN: Final = {b"\x0b": "vertical tab", b"\x0c": "form feed"}


def first_forbidden(data: bytes) -> int:
    """The index of the first forbidden byte in ``data``, or -1 (one memchr per byte kind)."""
    found = [at for at in map(data.find, FORBIDDEN) if at != -1]
    return min(found, default=-1)


def forbidden_byte(byte: bytes, offset: int) -> InvalidDocument:
    """The error for forbidden ``byte`` found at ``offset`` (from the object's first byte, 0)."""
    return InvalidDocument(
        "InvalidJSON",
        f"not valid JSON (a raw {FORBIDDEN[byte]} at offset {offset}; JSON allows it neither "
        "as whitespace nor in a string)",
    )
