"""The fast path: whole batches of products decoded by msgspec, accepted only where the exact
path would provably accept them with the same sum.

msgspec decodes in C, about four times the exact path's speed (profiling showed the exact path
spends its time creating and dispatching one Python tuple per JSON token). It is not the judge of
a document, though: anything unusual (a parse or schema error, a wrong cut, non-UTF-8, a byte
outside strict JSON, a possible duplicate ``price``, a total needing too many digits) makes
``decode_batch`` answer ``None``, and the exact path reads that batch and reports the precise
first problem. So this module changes speed, never an outcome; ``tests/test_totals_fastpath.py``
pins that by comparing both paths on any document.

Which products count is ``rule``'s: a batch in which a member ``rule.READS`` names may appear is
declined (the exact path hands those members to ``rule.counts``), and the others are added only if
``rule.counts`` counts a product holding none of them. Where batches are cut, and what happens to a
refused one, is ``source.Source``'s business.
"""

from __future__ import annotations

import decimal
import functools
import itertools
import math
import re
from collections.abc import Iterable
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final

import msgspec

from handler.totals.arithmetic import EXACT
from handler.totals.rule import NO_MEMBERS, PRICE, READS, counts
from handler.totals.strict import FORBIDDEN


class _Product(msgspec.Struct, gc=False):
    # The price's JSON text, untouched (msgspec still checks its grammar): how it is summed is
    # decided for the whole batch at once, below.
    price: msgspec.Raw = msgspec.field(name=PRICE)


_BATCH_DECODER: Final = msgspec.json.Decoder(list[_Product])
# Products whose other values hold a "price" key too (a nested offer): every top-level value's
# text, so that the keys inside them can be told from a duplicate at the top.
_FIELDS_DECODER: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
# ``Any``, not ``Decimal``: msgspec would also turn the string "1.5" into a Decimal, which the
# contract refuses. Untyped floats go through float_hook, which gets the number's exact text.
_PRICES_DECODER: Final = msgspec.json.Decoder(list[Any], float_hook=Decimal)
_FLOATS_DECODER: Final = msgspec.json.Decoder(list[float])
_price_of: Final = attrgetter("price")
# What ijson gives for a JSON number (bool is excluded: it would add as 0 or 1).
_NUMBER_TYPES: Final = frozenset({int, Decimal})
_PRICE_KEY: Final = b'"' + PRICE.encode() + b'"'
# What a top-level key ending in "price (an escaped quote, then the price's name) holds.
_PRICE_IN_KEY: Final = '"' + PRICE
# The members the rule reads, as they are written without escapes: a batch holding one (as a key
# or not) is the exact path's.
_READ_KEYS: Final = tuple(b'"' + key.encode() + b'"' for key in sorted(READS))
# JSON's two-character escapes: the character, and the letter after the backslash.
_SHORT_ESCAPES: Final = dict(zip('"\\/\b\f\n\r\t', '"\\/bfnrt', strict=True))


def _escapes(keys: Iterable[str]) -> tuple[bytes, ...]:
    """Every escape by which a key could write one of the characters of ``keys``: ``\\uXXXX``
    with its hex digits in either case (both halves of a UTF-16 pair beyond U+FFFF), and the
    two-character escapes (``\\/``). A batch holding none of them writes each such key as its
    plain text, so that looking for that text finds them all."""
    found: dict[bytes, None] = {}
    for char in sorted(set("".join(keys))):
        units = char.encode("utf-16-be")
        for at in range(0, len(units), 2):
            digits = units[at : at + 2].hex()
            for spelling in itertools.product(*(sorted({d, d.upper()}) for d in digits)):
                found[("\\u" + "".join(spelling)).encode()] = None
        if char in _SHORT_ESCAPES:
            found[("\\" + _SHORT_ESCAPES[char]).encode()] = None
    return tuple(found)


# Every escape a key could spell the price or a member the rule reads with (with the price alone,
# five: "\u0070" for its "p" and the like).
_KEY_ESCAPES: Final = _escapes({PRICE, *READS})

# The float route's bounds: at most this many decimal places, and a sum below 2**44 units of the
# last place (see ``_sum_of_plain_prices``).
_MAX_PLACES: Final = 15
_MAX_UNITS: Final = 2.0**44


@functools.cache
def _places_pattern(places: int) -> re.Pattern[bytes]:
    """A point followed by at least ``places`` digits (compiled on first use: not at import,
    where every millisecond is cold start)."""
    return re.compile(rb"\.[0-9]{%d}" % places)


def decode_batch(batch: bytes | memoryview, total: Decimal) -> tuple[int, Decimal] | None:
    """The fast path for ``batch`` (bytes that should be whole products separated by commas):
    the number of products and the new running total, or ``None`` for the exact path to decide.

    Accepts only what the exact path would accept with the same sum.
    """
    # One copy of the batch (it may be a view of the source's buffer): the array msgspec reads.
    # Brackets add no key, no escape and no forbidden byte, so the checks may read it too.
    array = b"".join((b"[", batch, b"]"))
    if not plain(array) or not _rule_allows(array):
        return None
    try:
        products = _BATCH_DECODER.decode(array)
        # msgspec keeps the last of duplicate keys: more 'price' keys than products means one
        # of them may be a duplicate (or merely nested, or inside a string: look closer).
        texts: list[msgspec.Raw] | None = list(map(_price_of, products))
        if array.count(_PRICE_KEY) != len(products):
            texts = _prices_beside_nested_keys(array)
        if texts is None:
            return None
        # Every price's text, as one JSON array: a few bytes per product, read again below.
        prices = b"".join((b"[", b",".join(texts), b"]"))
        with decimal.localcontext(EXACT):
            batch_sum = None if total.is_signed() else _sum_of_plain_prices(prices)
            if batch_sum is not None:
                return len(products), total + batch_sum
            values = _PRICES_DECODER.decode(prices)
            if not _NUMBER_TYPES.issuperset(map(type, values)):
                return None
            # One by one in document order, as the exact path adds: a different grouping could
            # avoid an intermediate sum that the exact path refuses.
            return len(products), sum(values, total)
    except (msgspec.MsgspecError, ArithmeticError, ValueError, RecursionError):
        # Not JSON, not the schema, an exponent beyond Decimal's range, a total too long,
        # nesting deeper than msgspec follows.
        return None


def _rule_allows(array: bytes) -> bool:
    """Whether ``rule`` lets this batch be added without looking at its products' members: none
    of them holds a member the rule reads (``array`` is ``plain``, so such a member would show its
    text), and a product holding none counts."""
    return counts(NO_MEMBERS) and not any(key in array for key in _READ_KEYS)


def _prices_beside_nested_keys(array: bytes) -> list[msgspec.Raw] | None:
    """Each product's price text where the batch holds more '"price"' than products, or
    ``None`` if one of them may be a duplicate price.

    Every '"price"' of the batch is a product's own price key, inside the text of another of
    its values (a nested key, a string), or ends another top-level key (an escaped quote and
    ``price``: such keys are declined, as their text is not kept). Counting the values' ones
    leaves the first kind: one per product means no duplicate (the dict keeps one of them, so
    a duplicate shows as one too many).
    """
    products = _FIELDS_DECODER.decode(array)
    expected = 0
    texts = []
    for product in products:
        price = product.pop(PRICE, None)
        if price is None:
            return None
        texts.append(price)
        if any(_PRICE_IN_KEY in key for key in product):
            return None
        expected += 1 + sum(bytes(value).count(_PRICE_KEY) for value in product.values())
    return texts if array.count(_PRICE_KEY) == expected else None


def _sum_of_plain_prices(prices: bytes) -> Decimal | None:
    """The exact sum of ``prices`` (a JSON array of numbers) if every one is a plain decimal
    (digits, at most one point, no sign, no exponent) and the sum is small enough to get
    exactly from floats; otherwise ``None``, and the caller adds Decimals one by one.

    Creating a Decimal per price was 40 % of the fast path's time. Floats are created in C by
    msgspec, and their sum is exact after rounding: with at most ``places`` decimal places every
    price is a whole number of units of 10**-places, each float is within a relative 2**-52 of
    its price, and the correctly rounded ``fsum`` and the scaling add two roundings more. Below
    2**44 units all of that stays under 0.01 of a unit, so rounding to the nearest unit gives the
    exact sum. Adding it to the running total at once gives what one-by-one addition gives: the
    same value, the same exponent (the smallest of the total's and the prices'; with no prices,
    the total's, as a total starts from ``Decimal(0)`` and its exponent never rises above 0),
    and, the prices not being negative, no intermediate sum longer than the final one (so a
    too-long total is refused either way).
    """
    if prices.translate(None, b"0123456789.,[]"):
        return None  # a sign, an exponent, or not a number at all
    places = 0
    while _places_pattern(places + 1).search(prices):
        places += 1
        if places > _MAX_PLACES:
            return None
    try:
        floats = _FLOATS_DECODER.decode(prices)
    except msgspec.ValidationError:
        return None  # beyond a float's range: Decimals have no such limit
    units = math.fsum(floats) * 10**places
    if not units < _MAX_UNITS:
        return None
    return Decimal(round(units)).scaleb(-places)


def plain(batch: bytes) -> bool:
    """Whether msgspec's reading of ``batch`` can be trusted: it is UTF-8 (msgspec does not check
    inside strings; yajl does), has no byte that msgspec takes for whitespace but strict JSON
    refuses, and every key that could be the price or a member the rule reads is written without
    escapes, so that looking for their text finds them all."""
    if not batch.isascii():
        try:
            batch.decode()
        except UnicodeDecodeError:
            return False
    # msgspec refuses these bytes itself today; the outcome must not depend on that. Each ``in``
    # is one memchr, several times faster than any two-byte pattern.
    if any(byte in batch for byte in FORBIDDEN):
        return False
    return b"\\" not in batch or not any(escape in batch for escape in _KEY_ESCAPES)
