"""The exact path: a state machine over the exact parser's events that checks the schema while
adding up the prices.

It sees every event of the document except those of product batches the fast path accepted, in
document order, so the first problem met reading from the start is the one reported, with its
place (``products[3].price``). Every error code and message comes from here or from the parser;
the schema itself is described in ``docs/behaviour.md``. Which products count is ``rule``'s, the
one place to change it: this module only hands ``rule.counts`` the members ``rule.READS`` names.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from decimal import Decimal
from typing import Final

from handler.totals.arithmetic import EXACT, MAX_DECIMAL_PLACES, MAX_TOTAL_DIGITS
from handler.totals.outcome import InvalidDocument, Total
from handler.totals.parser import Event, UnreadableNumber, ValueTooLong
from handler.totals.rule import NO_MEMBERS, PRICE, READS, Member, Members, Nested, counts
from handler.totals.source import Source

#: How deep an ignored value may nest. yajl keeps a byte per level and the walker a count, so
#: memory stays small; the fast path's msgspec refuses nesting deeper than about 10,000 levels
#: (Python's C recursion limit), so anything it accepts is accepted here too.
MAX_DEPTH: Final = 100_000

_JSON_TYPE: Final = {
    "start_map": "an object",
    "start_array": "an array",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_OPENS: Final = ("start_map", "start_array")
_CLOSES: Final = ("end_map", "end_array")


def walk(source: Source) -> Total:
    """Check the event stream against the schema while adding up the prices.

    A flat state machine rather than a recursive descent: it runs once per JSON token of the
    parts the fast path leaves to it, so it keeps the work per event small.
    """
    try:
        return _walk_document(source)
    except UnreadableNumber as error:  # at the root, or in a value the schema ignores there
        raise error.at("document") from None


def _walk_document(source: Source) -> Total:
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
        try:
            kind, _ = next(events)
        except UnreadableNumber as error:
            raise error.at("products") from None
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


def _walk_products(events: Iterator[Event], source: Source) -> tuple[int, Decimal]:
    """Consume the products array (its ``start_array`` already read): its count and total."""
    total = Decimal(0)
    count = 0
    # Whether a product holding no member the rule reads counts: asked once, not per product.
    plain_counts = counts(NO_MEMBERS)
    try:
        for item, _ in events:
            if item == "end_array":
                break
            if item != "start_map":
                raise _schema(f"products[{count}]", f"expected an object, got {_JSON_TYPE[item]}")
            price = _counted_price(events, count, plain_counts)
            if price is not None:
                try:
                    total = EXACT.add(total, price)
                except decimal.DecimalException:
                    raise _schema(f"products[{count}].{PRICE}", _beyond_exact(price)) from None
            count += 1
            if source.at_cut:  # this product's '}' ended the parser's input: skip ahead
                count, total = source.fast_forward(count, total)
    except UnreadableNumber as error:  # an item, or a value the schema ignores inside one
        raise error.at(f"products[{count}]") from None
    return count, total


def _counted_price(events: Iterator[Event], index: int, plain_counts: bool) -> Decimal | int | None:
    """Consume one product object (its ``start_map`` already read); return its price, or
    ``None`` where ``rule.counts`` leaves it out of the total (``plain_counts``: its answer for a
    product holding no member it reads)."""
    price: Decimal | int | None = None
    members: dict[str, Member] | None = None
    for ev, value in events:
        if ev == "end_map":
            if price is None:
                raise _schema(f"products[{index}]", f"missing key '{PRICE}'")
            if members is None:
                return price if plain_counts else None
            return price if counts(Members(members)) else None
        if value != PRICE:
            if value in READS:
                if members is None:
                    members = {}
                members[value] = _member(events)
            else:
                _skip_value(events)
            continue
        if price is not None:
            raise _schema(f"products[{index}].{PRICE}", "duplicate key")
        try:
            kind, price = next(events)
        except UnreadableNumber as error:
            raise error.at(f"products[{index}].{PRICE}") from None
        if kind != "number":
            raise _schema(
                f"products[{index}].{PRICE}", f"expected a number, got {_JSON_TYPE[kind]}"
            )
    raise AssertionError("unreachable: the parser ends every object it starts")  # pragma: no cover


def _beyond_exact(price: Decimal | int) -> str:
    """Why adding ``price`` was refused: the running total always has at most
    ``MAX_DECIMAL_PLACES``, so a price with more is the cause; otherwise the digits ran out."""
    exponent = price.as_tuple().exponent if isinstance(price, Decimal) else 0
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        return f"the exact total would need more than {MAX_DECIMAL_PLACES} decimal places"
    return f"the exact total would need more than {MAX_TOTAL_DIGITS} significant digits"


def _member(events: Iterator[Event]) -> Member:
    """Consume one value of a member the rule reads: a scalar as parsed, a container by kind."""
    ev, value = next(events)
    if ev in _OPENS:
        _skip_nested(events)
        return Nested.OBJECT if ev == "start_map" else Nested.ARRAY
    return value  # type: ignore[no-any-return]


def _skip_value(events: Iterator[Event]) -> None:
    """Consume one value of any kind: other keys, anywhere, are ignored."""
    ev, _ = next(events)
    if ev in _OPENS:
        _skip_nested(events)


def _skip_nested(events: Iterator[Event]) -> None:
    """Consume the rest of an object or array whose start was read."""
    depth = 1
    for ev, _ in events:
        if ev in _OPENS:
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueTooLong(f"a value nested deeper than {MAX_DEPTH} levels")
        elif ev in _CLOSES:
            depth -= 1
            if depth == 0:
                return


def _schema(place: str, problem: str) -> InvalidDocument:
    return InvalidDocument("InvalidSchema", f"{place}: {problem}")
