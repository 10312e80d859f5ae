"""The document's bytes: read from the stream, a leading BOM dropped, checked for bytes strict
JSON forbids, given to the exact parser in slices, and skipped over in batches by the fast path
where the walker (``exact.walk``) allows it.

This is where the two paths meet. The walker reads the parser's events; inside the products
array, slices end at candidate product boundaries ('}' then ','), and at such a boundary the
walker hands over to ``Source.fast_forward``, which cuts the bytes ahead into batches of whole
products for ``fast.decode_batch``. A batch it refuses is read by the exact parser instead, which
reports the first problem. ``stream.read`` is called only here, outside any ``except`` that turns
errors into ``InvalidDocument``: a dropped connection propagates unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Final, Protocol

from handler.totals import fast as fast_path
from handler.totals.bounds import LongValue
from handler.totals.parser import Event, Parser, ValueTooLong
from handler.totals.strict import first_forbidden, forbidden_byte

#: Bytes asked of the stream per read: large enough that the per-read Python cost disappears,
#: small enough to keep memory flat.
READ_SIZE: Final = 256 * 1024

_BOM: Final = b"\xef\xbb\xbf"
# The offset of a forbidden byte while none has been read: past any object.
_NONE_FOUND: Final = sys.maxsize
#: '},' candidates a cut looks at, from the last one back, before giving up on the buffer.
_MAX_CANDIDATES: Final = 64
#: Bytes after a '},' searched for the next product's '{' (pretty-printing indents it).
_LOOK_AHEAD: Final = 64
_WHITESPACE: Final = b" \t\n\r"


class BinaryReader(Protocol):
    """What the core reads from: anything with ``read(size)`` returning bytes (a file, a
    ``botocore`` streaming body, ``io.BytesIO``)."""

    def read(self, size: int = ..., /) -> bytes: ...


class Source:
    """The document's bytes, fed to the exact parser in slices, and skipped over in batches by
    the fast path where the walker allows it.

    Every byte before the first forbidden one (``strict``) goes either to the exact parser, in
    document order, or into a batch the fast path accepted; the parser's state after a product is
    the same however many products were skipped, so the exact path can always resume. The
    forbidden byte itself is never parsed: ``events`` raises there, once the events of the bytes
    before it were walked.
    """

    def __init__(
        self, stream: BinaryReader, *, fast: bool, read_size: int, max_value_bytes: int
    ) -> None:
        self._stream = stream
        self._fast = fast
        self._read_size = read_size
        # The most bytes held back for one batch of the fast path: a product larger than this (or
        # a run of bytes with no product boundary) goes through the exact path, so memory stays
        # bounded.
        self._max_batch = 4 * read_size
        self._buf = b""
        self._pos = 0  # the first byte not yet fed nor skipped
        self._offset = 0  # the object's offset of _buf[0] (a dropped BOM counts)
        self._forbidden_at = _NONE_FOUND  # the object's offset of the first forbidden byte
        # No byte from here on is parsed: a forbidden byte, or the byte that makes a value too
        # long (``bounds``), whichever comes first.
        self._stop_at = _NONE_FOUND
        self._long = LongValue(max_value_bytes)
        self._eof = False
        self._first = True
        self.bytes_read = 0
        self._parser = Parser()
        # Set by the walker while it reads the products array: slices then end at candidate
        # product boundaries ('}' then ','), where the fast path may take over.
        self.in_products = False
        # True while the walker holds the last event of a slice that ended at such a boundary.
        self.at_cut = False
        self._fed_to_cut = False
        # The exact path alone reads up to here: the fast path refused these bytes.
        self._exact_until = 0
        # Batches are cut at a guessed product boundary until a guess is refused (``_cut``).
        self._guess_cuts = True

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
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
                self._offset = len(_BOM)
            if not data:
                return self._read()
        self._exact_until -= self._pos
        self._offset += self._pos
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        if self._forbidden_at == _NONE_FOUND:
            # Each byte is searched once, as it arrives, whatever the read size.
            at = first_forbidden(data)
            if at != -1:
                self._forbidden_at = self._offset + len(self._buf) - len(data) + at
                self._stop_at = min(self._stop_at, self._forbidden_at)
        if self._long.too_long_at == -1:
            self._long.scan(data, self._offset + len(self._buf) - len(data))
            if self._long.too_long_at != -1:
                self._stop_at = min(self._stop_at, self._long.too_long_at)
        return True

    def events(self) -> Iterator[Event]:
        """The exact parser's events, slice by slice, to the end of the document."""
        pending = self._parser.events
        while True:
            self.at_cut = False
            ended = self._pos >= len(self._buf) and not self._read()
            if self._offset + self._pos >= self._stop_at:
                # Every event before it was walked (a schema error there came first).
                raise self._stop_error()
            # At the end the parser is closed: a truncated document fails there.
            error = self._parser.push(
                None if ended else self._next_slice(), nothing_read=not self.bytes_read
            )
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

    def _stop_error(self) -> Exception:
        """Why no byte from ``_stop_at`` on is parsed (the first of the two problems)."""
        if self._forbidden_at <= self._stop_at:
            at = self._forbidden_at - self._offset
            return forbidden_byte(self._buf[at : at + 1], self._forbidden_at)
        return ValueTooLong(
            f"{self._long.kind} longer than MAX_VALUE_BYTES ({self._long.limit} bytes)"
        )

    def _next_slice(self) -> bytes:
        buf, start = self._buf, self._pos
        # Never past a forbidden byte (the parser would take it for whitespace), nor past the
        # byte that makes a value too long (yajl would hold and re-read the value whole).
        end = min(len(buf), self._stop_at - self._offset)
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
            if self._offset + end > self._stop_at:
                # The exact path reads up to the stop and reports what comes first there.
                self._exact_until = end
                return count, total
            outcome = self._decode(end, total)
            if outcome is None and self._guess_cuts:
                # The guess may have cut inside a product (an array of objects in it): the
                # balanced cut decides, and this document is not guessed at again.
                self._guess_cuts = False
                balanced = self._cut(guess=False)
                if balanced not in (-1, end):
                    end = balanced
                    outcome = self._decode(end, total)
            if outcome is None:
                self._exact_until = end
                return count, total
            count += outcome[0]
            total = outcome[1]
            self._pos = end

    def _decode(self, end: int, total: Decimal) -> tuple[int, Decimal] | None:
        # A view, not a slice: the batch is copied once, into the array msgspec decodes.
        return fast_path.decode_batch(memoryview(self._buf)[self._pos + 1 : end], total)

    def _batch_end(self) -> int:
        """The end of the largest batch from ``_pos`` (``_cut``), reading more as needed; -1
        where there is none within ``_max_batch``."""
        while True:
            if len(self._buf) - self._pos < self._read_size:
                self._read()
            cut = self._cut(guess=self._guess_cuts)
            if cut != -1:
                return cut
            if self._eof or len(self._buf) - self._pos >= self._max_batch:
                return -1
            if not self._read():
                return -1

    def _cut(self, *, guess: bool) -> int:
        """The end (just after a '}' followed by ',') of the largest batch in the buffer from
        ``_pos`` that is likely whole products, or -1; msgspec's decode is what proves it.

        A guess takes the last '},' followed by '{' (the next product's start): it costs no pass
        over the batch. Otherwise, or where no '},' looks like that, the braces before the cut
        must balance: two passes (a count of each brace).
        """
        buf, start = self._buf, self._pos + 1
        cut = buf.rfind(b"},", start)
        if guess:
            at = cut
            for _ in range(_MAX_CANDIDATES):
                if at == -1:
                    break
                if buf[at + 2 : at + 2 + _LOOK_AHEAD].lstrip(_WHITESPACE).startswith(b"{"):
                    return at + 1
                at = buf.rfind(b"},", start, at)
        opened = buf.count(b"{", start, cut + 1)
        closed = buf.count(b"}", start, cut + 1)
        for _ in range(_MAX_CANDIDATES):
            if cut == -1 or opened == closed:
                break
            previous = buf.rfind(b"},", start, cut)
            opened -= buf.count(b"{", previous + 1, cut + 1)
            closed -= buf.count(b"}", previous + 1, cut + 1)
            cut = previous
        return cut + 1 if cut != -1 and opened == closed else -1
