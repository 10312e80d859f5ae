"""The fast path: whole batches of products decoded by msgspec, accepted only where the exact
path would provably accept them with the same sum.

msgspec decodes in C, about four times the exact path's speed (profiling showed the exact path
spends its time creating and dispatching one Python tuple per JSON token). It is not the judge of
a document, though: anything unusual (a parse or schema error, a wrong cut, non-UTF-8, a byte
outside strict JSON, a possible duplicate ``price``, a total needing too many digits) makes
``decode_batch`` answer ``None``, and the exact path reads that batch and reports the precise
first problem. So this module changes speed, never an outcome; ``tests/test_totals_fastpath.py``
pins that by comparing both paths on any document.

Where batches are cut, and what happens to a refused one, is ``source.Source``'s business.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final

import msgspec

from handler.totals.arithmetic import EXACT
from handler.totals.strict import FORBIDDEN


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


def decode_batch(batch: bytes | memoryview, total: Decimal) -> tuple[int, Decimal] | None:
    """The fast path for ``batch`` (bytes that should be whole products separated by commas):
    the number of products and the new running total, or ``None`` for the exact path to decide.

    Accepts only what the exact path would accept with the same sum.
    """
    # One copy of the batch (it may be a view of the source's buffer): the array msgspec reads.
    # Brackets add no key, no escape and no forbidden byte, so the checks may read it too.
    array = b"".join((b"[", batch, b"]"))
    if not plain(array):
        return None
    try:
        products = _BATCH_DECODER.decode(array)
        # msgspec keeps the last of duplicate keys: more 'price' keys than products means one
        # of them may be a duplicate (or merely nested, or inside a string: look closer).
        if array.count(_PRICE_KEY) != len(products):
            return None
        prices = list(map(_price_of, products))
        if not _NUMBER_TYPES.issuperset(map(type, prices)):
            return None
        # One by one in document order, as the exact path adds: a different grouping could
        # avoid an intermediate sum that the exact path refuses.
        with decimal.localcontext(EXACT):
            total = sum(prices, total)
    except (msgspec.MsgspecError, ArithmeticError, ValueError):
        # Not JSON, not the schema, an exponent beyond Decimal's range, a total too long.
        return None
    return len(products), total


def plain(batch: bytes) -> bool:
    """Whether msgspec's reading of ``batch`` can be trusted: it is UTF-8 (msgspec does not check
    inside strings; yajl does), has no byte that msgspec takes for whitespace but strict JSON
    refuses, and every key that could be 'price' is written without escapes, so that counting
    finds them all."""
    if not batch.isascii():
        try:
            batch.decode()
        except UnicodeDecodeError:
            return False
    # msgspec refuses these bytes itself today; the outcome must not depend on that. Each ``in``
    # is one memchr, several times faster than any two-byte pattern.
    if any(byte in batch for byte in FORBIDDEN):
        return False
    return b"\\" not in batch or not any(escape in batch for escape in _PRICE_LETTER_ESCAPES)
