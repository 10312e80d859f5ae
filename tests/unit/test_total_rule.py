"""The product rule (``handler/totals/rule.py``, the one place to change which products count) is
applied alike by the exact path alone, by the whole pipeline (whose fast path adds most products of
a large market) and by a plain ``json.loads`` reading of the rule.

Every document here is large enough for the fast path: a run of ordinary products fills the first
``READ_SIZE`` bytes (which the exact path reads), then come the products under test, then a few
ordinary ones (a batch ends at a product boundary before the last product). The products under
test hold members of any name - the names a rule would plausibly read, and arbitrary text -
spelled with escapes or not, with values of every kind, nested or not. A change to which products
count that is made in one path only (``totals/exact.py`` without ``totals/fast.py``) makes the two
disagree here; one made in ``rule.py`` reaches both.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler import totals
from handler.totals import fast, rule
from handler.totals.arithmetic import EXACT

#: Ordinary products before the ones under test: 21,000 of 14 bytes, past ``READ_SIZE``.
PAD = ", ".join(['{"price": 1}'] * 21_000)
TAIL = ", ".join(['{"price": 2}'] * 20)
assert len(PAD) > totals.READ_SIZE

#: Member names a rule would plausibly read (and the rule's own), beside arbitrary text below.
NAMES = sorted(
    {
        *rule.READS,
        "available",
        "active",
        "discontinued",
        "hidden",
        "stock",
        "quantity",
        "status",
        "name",
        "sku",
        "id",
        "n",
        "a",
        "tags",
        "offer",
        "a/b",
        'say "hi"',
        "back\\slash",
        "café",
        "😀",
    }
)
#: The values a rule would plausibly test, each kind of JSON value among them.
VALUES = [
    "false",
    "true",
    "null",
    "0",
    "1",
    "-1.5",
    '""',
    '"false"',
    '"no"',
    "[]",
    "{}",
    "[false]",
    '{"price": 1, "n": [false]}',
]
SHORT_ESCAPES = dict(zip('"\\/\b\f\n\r\t', '"\\/bfnrt', strict=True))


def document(products: list[str]) -> bytes:
    return ('{"market": "m", "products": [' + ", ".join([PAD, *products, TAIL]) + "]}").encode()


Outcome = tuple[str, int | str]


def run(document: bytes, *, fast_path: bool) -> Outcome:
    """``(total as text, count)`` or ``(code, message)`` (the text keeps the scale: 0.30 is not
    0.3), from the whole pipeline or the exact path alone."""
    try:
        if fast_path:
            result = totals.total_prices(io.BytesIO(document))
        else:
            result = totals._total(io.BytesIO(document), fast=False)
    except totals.InvalidDocument as error:
        return (error.code, error.message)
    return (str(result.total), result.product_count)


def as_member(value: object) -> rule.Member:
    """A ``json.loads`` value as ``rule.counts`` is given it."""
    if isinstance(value, dict):
        return rule.Nested.OBJECT
    if isinstance(value, list):
        return rule.Nested.ARRAY
    assert value is None or isinstance(value, bool | int | Decimal | str)
    return value


def reference(document: bytes) -> Outcome:
    """The total as the rule reads with ``json.loads``: every member of every product is shown
    to ``rule.counts`` (so a rule reading a member ``rule.READS`` does not name counts here, and
    raises in the pipeline)."""
    products = json.loads(document, parse_float=Decimal)["products"]
    total = Decimal(0)
    for product in products:
        members = {key: as_member(value) for key, value in product.items() if key != rule.PRICE}
        if rule.counts(members):
            total = EXACT.add(total, product[rule.PRICE])
    return (str(total), len(products))


def assert_rule_applied_alike(document: bytes) -> Outcome:
    """The exact path alone and the whole pipeline give the same outcome; where it is a total,
    the ``json.loads`` reading of the rule gives it too."""
    expected = run(document, fast_path=False)
    assert run(document, fast_path=True) == expected, (
        "the fast path (totals/fast.py) and the exact path (totals/exact.py) disagree on which "
        "products count: change the rule in totals/rule.py, which both derive from"
    )
    if isinstance(expected[1], int):  # a total: the document is valid
        assert reference(document) == expected
    return expected


class FastProducts:
    """The products the fast path added (its accepted batches): proof a test reached it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        decode = fast.decode_batch

        def counting(batch: bytes, total: Decimal) -> tuple[int, Decimal] | None:
            result = decode(batch, total)
            self.count += 0 if result is None else result[0]
            return result

        monkeypatch.setattr(fast, "decode_batch", counting)


# --- every plausible name, with every kind of value, plainly written or escaped -----------------


def spell(key: str, how: str) -> str:
    """``key`` as JSON text: ``plain`` (escaped only where JSON requires), ``first`` (its first
    character as ``\\uxxxx``), ``all`` (every character as ``\\uXXXX``)."""
    chars = []
    for at, char in enumerate(key):
        if how == "all" or (how == "first" and at == 0):
            units = char.encode("utf-16-be")
            hexes = [units[i : i + 2].hex() for i in range(0, len(units), 2)]
            chars.append("".join("\\u" + (h.upper() if how == "all" else h) for h in hexes))
        else:
            chars.append(json.dumps(char, ensure_ascii=False)[1:-1])
    return '"' + "".join(chars) + '"'


@pytest.mark.parametrize("how", ["plain", "first", "all"])
@pytest.mark.parametrize("name", NAMES)
def test_a_member_of_any_plausible_name_counts_alike(
    monkeypatch: pytest.MonkeyPatch, name: str, how: str
) -> None:
    key = spell(name, how)
    probes = [f'{{"price": 7, {key}: {value}}}' for value in VALUES]
    probes += [f'{{{key}: {value}, "price": 0.5}}' for value in VALUES]
    fast_products = FastProducts(monkeypatch)

    _, count = assert_rule_applied_alike(document(probes))

    assert count == 21_000 + len(probes) + 20
    if how == "plain" and name not in rule.READS:
        # The premise: the fast path added the products under test, so it was compared.
        assert fast_products.count > len(probes) + 1_000


def test_the_fast_path_reads_products_with_plain_extra_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ordinary markets keep their speed: members the rule does not read (a name, a sku, nested
    attributes) leave a batch to the fast path."""
    products = [
        f'{{"name": "p{i}", "sku": "S{i:05d}", "attrs": {{"tags": [1, {{}}]}}, "price": {i}.25}}'
        for i in range(3_000)
    ]
    fast_products = FastProducts(monkeypatch)
    assert_rule_applied_alike(document(products))
    assert fast_products.count > 3_000


# --- arbitrary members: any name, any spelling, any value, any nesting -------------------------


@st.composite
def member_key(draw: st.DrawFn) -> str:
    """A key of a plausible name or arbitrary text, each character written plainly or escaped
    (``\\uxxxx`` in either case, a UTF-16 pair beyond U+FFFF, or JSON's two-character escapes)."""
    name = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=5)))
    chars = []
    for char in name:
        how = draw(st.sampled_from(["plain", "plain", "u", "U", "short"]))
        if how in ("u", "U"):
            units = char.encode("utf-16-be")
            for at in range(0, len(units), 2):
                digits = units[at : at + 2].hex()
                chars.append("\\u" + (digits.upper() if how == "U" else digits))
        elif how == "short" and char in SHORT_ESCAPES:
            chars.append("\\" + SHORT_ESCAPES[char])
        else:
            chars.append(json.dumps(char, ensure_ascii=False)[1:-1])
    return '"' + "".join(chars) + '"'


_SCALAR = st.one_of(
    st.sampled_from(VALUES[:9]),
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(-(10**4), 10**4, places=2).map(str),
    st.text(max_size=4).map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.sampled_from(['"\\u0061vailable"', '"\\"price\\""', '"}, {"', '"price"', '"a\\\\"']),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
        | st.lists(st.tuples(member_key(), inner), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
        )
    ),
    max_leaves=6,
)
_PRICE = st.one_of(
    st.integers(0, 10**6).map(str),
    st.decimals(0, 10**4, places=2).map(str),
    st.sampled_from(["-4.75", "1E+2", "0.005", "2.50", '"1"', "true", "null"]),
)


@st.composite
def product(draw: st.DrawFn) -> str:
    members = draw(st.lists(st.tuples(member_key(), _VALUE), max_size=4))
    members.insert(draw(st.integers(0, len(members))), ('"price"', draw(_PRICE)))
    return "{" + ", ".join(f"{key}: {value}" for key, value in members) + "}"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(product(), min_size=1, max_size=6))
def test_products_with_arbitrary_members_count_alike(products: list[str]) -> None:
    assert_rule_applied_alike(document(products))
