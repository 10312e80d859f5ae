"""The bound on a single value: the first offset at which one token's text (a string with its
quotes, a key, a number) grows longer than ``MAX_VALUE_BYTES``.

yajl keeps a token that a push leaves unfinished in a buffer and lexes it again from its start on
every later push, so a long value would cost memory of its length and time of its square. The
source therefore never gives yajl the byte that makes a token too long: this scan finds it, as
the bytes arrive, before the parser sees them.

It costs a few C-speed passes per block and no Python work per token: in blocks of at most the
limit, no token that begins and ends inside one block can be too long, so only the token open at
each block's edges is followed. Escapes are neutralised first (``\\\\`` and ``\\"`` become two
plain bytes), so that every ``"`` left is a string's start or end; after a syntax error the scan
may misjudge, but yajl is given every byte before the refused one and reports that error first.
"""

from __future__ import annotations

from typing import Final

#: Bytes that end a number or literal outside strings: JSON's whitespace, structure and '"'.
_DELIMITERS: Final = b' \t\n\r[]{}:,"'
#: Every delimiter becomes ' ', every other byte 'a': one memchr then finds a run's end.
_RUNS: Final = bytes(32 if byte in _DELIMITERS else 97 for byte in range(256))
_NONE: Final = -1
#: Bytes at a block's edge looked at first: a run's end is almost always among them, so the
#: whole block is translated only for a long run.
_EDGE: Final = 64
#: The default of ``MAX_VALUE_BYTES``: far above any real name or price, far below 128 MB.
DEFAULT_MAX_VALUE_BYTES: Final = 1024 * 1024
#: The smallest limit accepted: blocks are at most the limit long, and much smaller blocks would
#: cost a Python call per few bytes.
MIN_MAX_VALUE_BYTES: Final = 1024


class LongValue:
    """Follows the token open at the end of what was scanned; ``too_long_at`` is the object's
    offset of the first byte that makes a token longer than ``limit`` (the byte is refused),
    ``-1`` while there is none, and ``kind`` says what that token is."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.too_long_at = _NONE
        self.kind = ""
        self._block = min(limit, 256 * 1024)
        self._in_string = False
        self._start = _NONE  # the open token's first byte: its '"', or a number's first byte
        self._escaped = False  # the next byte is escaped (a block ended with a lone '\')

    def scan(self, data: bytes, at: int) -> None:
        """Scan ``data``, whose first byte is at the object's offset ``at``."""
        step = self._block
        for begin in range(0, len(data), step):
            if self.too_long_at != _NONE:
                return
            self._scan_block(data[begin : begin + step], at + begin)

    def _scan_block(self, block: bytes, at: int) -> None:
        if self._escaped:
            block = b"_" + block[1:]
        self._escaped = False
        if b"\\" in block:
            block = block.replace(b"\\\\", b"__")
            self._escaped = block.endswith(b"\\")
            block = block.replace(b'\\"', b"__")
        end = at + len(block)
        limit = self.limit
        rest = 0  # where the bytes outside the token open at the block's start begin
        if self._in_string:
            close = block.find(b'"')
            if (end if close == -1 else at + close) >= self._start + limit:
                self._refuse(self._start + limit, "a string")
                return
            if close == -1:
                return
            rest = close + 1
            self._in_string = False
            self._start = _NONE
        if self._start != _NONE:  # a number (or literal) run from the last block
            stop = block[:_EDGE].translate(_RUNS).find(b" ")
            if stop == -1:
                stop = block.translate(_RUNS).find(b" ")
            if (end if stop == -1 else at + stop) > self._start + limit:
                self._refuse(self._start + limit, "a number")
                return
            if stop == -1:
                return
            self._start = _NONE
        if block.count(b'"', rest) % 2:
            self._in_string = True
            self._start = at + block.rfind(b'"')
            return
        edge = max(len(block) - _EDGE, 0)
        last = block[edge:].translate(_RUNS).rfind(b" ")
        last = block.translate(_RUNS).rfind(b" ") if last == -1 else edge + last
        if last != len(block) - 1:
            self._start = at + last + 1

    def _refuse(self, offset: int, kind: str) -> None:
        self.too_long_at = offset
        self.kind = kind
