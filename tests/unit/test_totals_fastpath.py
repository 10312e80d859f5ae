"""The core's fast path (msgspec batches) never changes an outcome: for any document, valid or
not, it gives the same ``Total`` - or the same code and message - as the exact path alone, with
batch boundaries falling anywhere (small read sizes put them between and inside products)."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import ijson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler import totals
from handler.totals import MAX_TOTAL_DIGITS, InvalidDocument, fast
from tests.support import examples

READ_SIZES = (1, 3, 16, 64, 4096)


def outcome(document: bytes, *, fast: bool, read_size: int = totals.READ_SIZE) -> object:
    """``(total as text, count)`` or ``(code, message)``: comparable across the two paths (the
    text keeps the scale: 0.30 is not 0.3)."""
    try:
        result = totals._total(io.BytesIO(document), fast=fast, read_size=read_size)
    except InvalidDocument as error:
        return (error.code, error.message)
    return (str(result.total), result.product_count)


def assert_paths_agree(document: bytes) -> object:
    expected = outcome(document, fast=False)
    for read_size in READ_SIZES:
        assert outcome(document, fast=True, read_size=read_size) == expected, read_size
    return expected


class CountingBatches:
    """Counts the batches the fast path accepted: proof that a test exercised it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.accepted = 0
        self.refused = 0
        self.products = 0  # in the accepted batches
        decode = fast.decode_batch

        def counting(batch: bytes, total: Decimal) -> tuple[int, Decimal] | None:
            result = decode(batch, total)
            if result is None:
                self.refused += 1
            else:
                self.accepted += 1
                self.products += result[0]
            return result

        monkeypatch.setattr(fast, "decode_batch", counting)


def products(*items: str, sep: str = ", ") -> bytes:
    return ('{"market": "m", "products": [' + sep.join(items) + '], "end": true}').encode()


PLAIN = [
    f'{{"name": "p{i}", "attrs": {{"a": [1, {{}}]}}, "price": {i}.{i % 100:02d}}}'
    for i in range(200)
]


# --- the fast path is used, and agrees ----------------------------------------------------------


def test_a_plain_document_goes_through_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    batches = CountingBatches(monkeypatch)
    expected = assert_paths_agree(products(*PLAIN))
    assert batches.accepted > 0
    total = sum(Decimal(f"{i}.{i % 100:02d}") for i in range(200))
    assert expected == (str(total), 200)


def test_products_with_a_nested_price_go_through_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A nested object with a 'price' key of its own (an offer) is not a duplicate: such
    products are batched too, not left to the exact path (issue 23: 5.8x slower)."""
    batches = CountingBatches(monkeypatch)
    items = [f'{{"price": {i}.5, "offer": {{"price": 1, "n": "\\"price"}}}}' for i in range(3000)]
    expected = assert_paths_agree(products(*items))
    assert expected == (str(sum(Decimal(f"{i}.5") for i in range(3000))), 3000)
    assert batches.products > 2500


# The prices a market may hold: whole, cents, more places, an exponent, a negative one (which the
# fast path adds as Decimals, not through its float route). Enough kinds that any change to how one
# price counts changes the total of these.
MIXED_PRICES = ["150", "19.99", "0.005", "2.50", "1E+2", "3.2e-3", "-4.75", "0"]
#: Copies of ``MIXED_PRICES`` in the large market: 5.5 MB. The exact path reads the first
#: ``READ_SIZE`` (256 KiB) of a document; the fast path takes over after that.
COPIES = 40_000


def test_a_large_market_totals_as_a_small_one_of_the_same_products(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The newcomer's guard: the total is computed by two paths that must agree. A small market
    is read by the exact path alone (``totals/exact.py``, the judge); in a large one the fast path
    (``totals/fast.py``) adds most products. Changing how a price counts in one of them only
    makes the two totals below differ: change both (docs/development.md, "Changing how the total
    is computed")."""
    small = products(*(f'{{"price": {price}}}' for price in MIXED_PRICES))
    large = products(*(f'{{"price": {price}}}' for price in MIXED_PRICES * COPIES))
    batches = CountingBatches(monkeypatch)

    small_total = totals.total_prices(io.BytesIO(small))
    assert batches.products == 0
    large_total = totals.total_prices(io.BytesIO(large))

    # The premise: the fast path took most of the large market, none of the small one.
    assert batches.products > 0.9 * len(MIXED_PRICES) * COPIES
    assert large_total.product_count == len(MIXED_PRICES) * COPIES
    assert large_total.total == small_total.total * COPIES, (
        "the fast path (totals/fast.py) and the exact path (totals/exact.py) disagree: "
        "a change to how a price counts must be made in both"
    )
    assert small_total.total == sum(map(Decimal, MIXED_PRICES))


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("not UTF-8 in an ignored string", '"name": "\xff"'),
        ("lone surrogate escape", '"name": "\\ud800"'),
        ("valid non-ASCII", '"name": "Käse \\u00e9 😀"'),
        ("duplicate price", '"price": 1, "price": 2'),
        ("duplicate price, one escaped", '"price": 1, "pr\\u0069ce": 2'),
        ("escaped price key alone", '"\\u0070rice": 7'),
        (
            "duplicate price, every letter escaped",
            '"price": 1, "\\u0070\\u0072\\u0069\\u0063\\u0065": 2',
        ),
        ("nested price key", '"price": 1, "sub": {"price": 5}'),
        ("price as a string", '"price": "1.5"'),
        ("price true", '"price": true'),
        ("price null", '"price": null'),
        ("price object", '"price": {"amount": 1}'),
        ("price missing", '"name": "x"'),
        ("NaN", '"price": NaN'),
        ("leading zero", '"price": 01'),
        ("exponent beyond Decimal", '"price": 1e9999999999999999999'),
        ("exponent at Decimal's edge", '"price": 1e999999999999999999'),
        ("total too long", f'"price": 1e{MAX_TOTAL_DIGITS + 5}'),
        ("huge integer", '"price": 1' + "0" * 5000),
        ("string holding product text", '"price": 1, "n": "x}, {\\"price\\": 9}, {"'),
        ("braces in a string", '"price": 1, "n": "}},{{"'),
        ("control character", '"price": 1, "n": "a\x01"'),
        ("form feed as space", '"price":\x0c1'),
        ("vertical tab as space", '"price":\x0b1'),
        ("form feed in a string", '"price": 1, "n": "a\x0cb"'),
        ("vertical tab after a price", '"price": 1\x0b'),
        ("minus zero", '"price": -0'),
        ("negative scale", '"price": 1E+2'),
        ("deep nesting", '"price": 1, "d": ' + "[" * 600 + "]" * 600),
        ("deeper nesting than msgspec follows", '"price": 1, "d": ' + "[" * 20000 + "]" * 20000),
        ("nested price and a duplicate", '"price": 1, "o": {"price": 2}, "price": 3'),
        (
            "duplicate price beside an escaped quote key",
            '"price": 1, "price": 2, "\\u0022price": 3',
        ),
        ("escaped quote and price as a key", '"\\"price": 3, "price": 1'),
        ("price text in a string value", '"price": 1, "o": "\\"price"'),
    ],
)
def test_one_odd_product_among_plain_ones(name: str, replacement: str) -> None:
    # The odd product sits well inside the array, where the fast path is running.
    items = list(PLAIN)
    items[150] = items[150].replace('"price": 150.50', replacement)
    assert replacement in items[150], name
    assert_paths_agree(products(*items))


@pytest.mark.parametrize(
    "document",
    [
        products(*PLAIN)[:-40],  # truncated after the array
        products(*PLAIN)[: len(products(*PLAIN)) // 2],  # truncated inside it
        products(*PLAIN).replace(b"}, {", b"} {", 1),  # a missing comma
        products(*PLAIN).replace(b"}, {", b"},, {", 1),
        products(*PLAIN).replace(b"]", b", ]", 1),  # a trailing comma
        products(*PLAIN) + b"garbage",
        products(*PLAIN, sep=" , "),  # no '},' anywhere: the exact path throughout
        products(*PLAIN, sep=",\n  "),
        products(*PLAIN).replace(b'"end": true', b'"products": []'),  # a second 'products'
        products(*PLAIN[:150], '"not an object"', *PLAIN[150:]),
        products(*PLAIN[:150], '"x}, {"', *PLAIN[150:]),  # a string element holding "},"
        products(*PLAIN[:150], "[]", *PLAIN[150:]),
        b"\xef\xbb\xbf" + products(*PLAIN),  # a leading BOM, split over reads when small
        b"\xef\xbb" + products(*PLAIN),  # half a BOM
        b"\xef\xbb",
        b"\xef\xbb\xbf",
        b"",
        b"   ",
        b'{"products": []}',
        b'{"products": [{"price": 1}]}',
    ],
)
def test_document_level_cases(document: bytes) -> None:
    assert_paths_agree(document)


def test_a_product_larger_than_a_batch() -> None:
    big = '{"price": 2.5, "blob": "' + "x" * (5 * 4096) + '"}'
    assert assert_paths_agree(products(*PLAIN[:50], big, *PLAIN[50:]))[1] == 201  # type: ignore[index]


def test_many_nested_boundaries_in_one_product() -> None:
    # More '},' inside one product than the cut search looks back over.
    nested = '{"price": 3, "n": [' + "{}, " * 100 + "{}]}"
    assert assert_paths_agree(products(*PLAIN[:20], nested, *PLAIN[20:]))[1] == 201  # type: ignore[index]


# --- where batches are cut: a guess first, braces counted where a guess fails ----------------


def batches_of(document: bytes, monkeypatch: pytest.MonkeyPatch) -> CountingBatches:
    """The batches the fast path accepted and refused for ``document`` (read as a Lambda
    reads it), which both paths total the same."""
    batches = CountingBatches(monkeypatch)
    expected = outcome(document, fast=False)
    assert outcome(document, fast=True) == expected
    return batches


def test_products_separated_as_usual_are_cut_by_guess_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches = batches_of(products(*PLAIN * 400), monkeypatch)
    assert (batches.accepted > 5, batches.refused) == (True, 0)


def test_pretty_printed_products_are_cut_by_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    batches = batches_of(products(*PLAIN * 400, sep=",\n        "), monkeypatch)
    assert (batches.accepted > 5, batches.refused) == (True, 0)


def test_products_indented_beyond_the_look_ahead_are_cut_by_their_braces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No '},' is followed by '{' within 64 bytes: no guess at all, the balanced cut serves.
    batches = batches_of(products(*PLAIN * 400, sep=",\n" + " " * 70), monkeypatch)
    assert (batches.accepted > 5, batches.refused) == (True, 0)


def test_a_wrong_guess_is_made_once_then_braces_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Objects in an array inside each product: their '}, {' looks like a product boundary.
    variants = ", ".join(f'{{"sku": "v{i}", "size": {i}}}' for i in range(20))
    items = [f'{{"price": {i}.5, "variants": [{variants}]}}' for i in range(4000)]
    batches = batches_of(products(*items), monkeypatch)
    # The first guess is refused; every batch after it is cut by its braces, and accepted.
    assert (batches.accepted > 5, batches.refused) == (True, 1)
    assert outcome(products(*items), fast=True) == ("8000000.0", 4000)  # 0.5 + 1.5 + ... + 3999.5


def test_a_batch_refused_for_its_content_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The guessed cut is the balanced one: nothing to try again, the exact path reads it.
    items = list(PLAIN * 400)
    # (A nested price is batched now: a duplicate is what the fast path refuses.)
    items[40_000] = '{"price": 1, "price": 5}'
    batches = batches_of(products(*items), monkeypatch)
    assert (batches.accepted > 5, batches.refused) == (True, 1)


# --- plain prices are summed as floats, and the sum is still exact -------------------------------


def plain_sum(*texts: str) -> Decimal | None:
    return fast._sum_of_plain_prices(("[" + ",".join(texts) + "]").encode())


def exact_sum(*texts: str) -> Decimal:
    return sum((Decimal(text) for text in texts), Decimal(0))


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("150.00", "250.00"), "400.00"),  # the scale is kept
        (("0.1", "0.2"), "0.3"),  # where a float sum gives 0.30000000000000004
        (("1", "2.5", "0.125", "0.10"), "3.725"),  # the largest scale wins
        (("0.1",) * 100_000, "10000.0"),  # many roundings, none left
        (("0.000000000000001",), "1E-15"),  # fifteen places, the most taken
        (("17592186044415",), "17592186044415"),  # 2**44 - 1 units
        (("175921860444.15",), "175921860444.15"),
        ((), "0"),
    ],
)
def test_plain_prices_sum_exactly_as_floats(texts: tuple[str, ...], expected: str) -> None:
    assert str(plain_sum(*texts)) == expected == str(exact_sum(*texts))


@pytest.mark.parametrize(
    "texts",
    [
        ("-1.5", "2"),  # a sign
        ("1e2",),  # an exponent
        ("1E-3",),
        ('"1.5"',),  # not a number
        ("true",),
        ("0.0000000000000001",),  # sixteen places
        ("17592186044416",),  # 2**44 units
        ("175921860444.16",),
        ("9999999999.99",) * 2000,  # a sum too large, of prices that are not
        ("123456789012345678901234567890.5",),  # digits a float cannot hold
        ("1" + "0" * 400,),  # beyond a float's range
    ],
)
def test_other_prices_are_left_to_decimals(texts: tuple[str, ...]) -> None:
    assert plain_sum(*texts) is None


_PLAIN_PRICE = st.builds(
    lambda whole, fraction: str(whole) + ("." + fraction if fraction else ""),
    st.one_of(st.integers(0, 10**6), st.integers(0, 10**20)),
    st.text("0123456789", max_size=17),
)


@settings(max_examples=examples(500), deadline=None, derandomize=True)
@given(st.lists(_PLAIN_PRICE, max_size=40))
def test_the_float_sum_is_exact_or_declined(texts: list[str]) -> None:
    result = plain_sum(*texts)
    assert result is None or str(result) == str(exact_sum(*texts))


@settings(max_examples=examples(200), deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 10**8), max_size=40), st.integers(0, 4))
def test_money_like_prices_take_the_float_route(cents: list[int], places: int) -> None:
    texts = [f"{Decimal(c).scaleb(-places):f}" for c in cents]
    assert str(plain_sum(*texts)) == str(exact_sum(*texts))


def float_route_sums(monkeypatch: pytest.MonkeyPatch) -> list[Decimal | None]:
    """What each call of the float route answered (``None``: declined, Decimals add instead)."""
    sums: list[Decimal | None] = []
    route = fast._sum_of_plain_prices

    def recording(prices: bytes) -> Decimal | None:
        sums.append(route(prices))
        return sums[-1]

    monkeypatch.setattr(fast, "_sum_of_plain_prices", recording)
    return sums


def test_a_document_of_plain_prices_is_summed_by_the_float_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sums = float_route_sums(monkeypatch)
    batches = batches_of(products(*PLAIN * 400), monkeypatch)
    assert batches.accepted == len(sums) > 5
    assert None not in sums


def test_a_negative_running_total_is_carried_by_decimals(monkeypatch: pytest.MonkeyPatch) -> None:
    # After a negative total the float route is not even asked: its proof needs no sign.
    sums = float_route_sums(monkeypatch)
    items = ['{"price": -100000000.5}', *PLAIN * 100]
    batches = batches_of(products(*items), monkeypatch)
    assert (batches.accepted > 1, sums) == (True, [])
    assert outcome(products(*items), fast=True)[0] == str(  # type: ignore[index]
        Decimal("-100000000.5") + 100 * sum(Decimal(f"{i}.{i % 100:02d}") for i in range(200))
    )


def test_an_unexpected_parser_error_is_not_taken_for_the_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Exploding:
        def send(self, data: bytes) -> None:
            raise MemoryError

        def close(self) -> None:
            pass

    monkeypatch.setattr(ijson, "basic_parse_coro", lambda *_, **__: Exploding())
    with pytest.raises(MemoryError):
        totals.total_prices(io.BytesIO(products(*PLAIN)))


def test_errors_of_the_stream_propagate_unchanged_from_the_fast_path() -> None:
    class Dropped(OSError):
        pass

    class FailingStream:
        def __init__(self, data: bytes, fail_at: int) -> None:
            self._data = io.BytesIO(data)
            self._fail_at = fail_at

        def read(self, size: int = -1) -> bytes:
            if self._data.tell() >= self._fail_at:
                raise Dropped("connection reset")
            return self._data.read(size)

    document = products(*PLAIN)
    for fast_path in (True, False):
        with pytest.raises(Dropped):
            totals._total(
                FailingStream(document, len(document) // 2), fast=fast_path, read_size=512
            )


# --- bytes strict JSON forbids, and invalid UTF-8, where the fast path runs ----------------------

FORBIDDEN = {"\x0b": "vertical tab", "\x0c": "form feed"}
ALL_READ_SIZES = (*READ_SIZES, 2, 5, totals.READ_SIZE)


def assert_outcome_everywhere(document: bytes, expected: object) -> None:
    """Both paths, every read size (batch and read boundaries everywhere), give ``expected``."""
    assert outcome(document, fast=False) == expected
    for read_size in ALL_READ_SIZES:
        assert outcome(document, fast=True, read_size=read_size) == expected, read_size


def forbidden_outcome(char: str, offset: int) -> tuple[str, str]:
    return (
        "InvalidJSON",
        f"not valid JSON (a raw {FORBIDDEN[char]} at offset {offset}; JSON allows it neither as "
        "whitespace nor in a string)",
    )


def _place(char: str, where: str) -> bytes:
    items = list(PLAIN)
    if where == "before a product":
        items[150] = char + items[150]
    elif where == "before a comma":
        items[150] += char
    elif where == "in a string":
        items[150] = items[150].replace('"p150"', f'"p1{char}50"')
    elif where == "before a price":
        items[150] = items[150].replace('"price": ', f'"price":{char}')
    elif where == "in the last product":
        items[-1] = items[-1].replace('"price": ', f'"price": {char}')
    elif where == "after the array":
        return products(*items).replace(b'], "end"', f"]{char}, ".encode() + b'"end"')
    else:  # trailing
        return products(*items) + char.encode()
    return products(*items)


@pytest.mark.parametrize("char", FORBIDDEN)
@pytest.mark.parametrize(
    "where",
    [
        "before a product",
        "before a comma",
        "in a string",
        "before a price",
        "in the last product",
        "after the array",
        "trailing",
    ],
)
def test_a_forbidden_byte_among_many_products(
    monkeypatch: pytest.MonkeyPatch, char: str, where: str
) -> None:
    batches = CountingBatches(monkeypatch)
    document = _place(char, where)
    assert document.count(char.encode()) == 1

    assert_outcome_everywhere(document, forbidden_outcome(char, document.index(char.encode())))
    assert batches.accepted > 0  # the products before it went through the fast path


@pytest.mark.parametrize("char", FORBIDDEN)
def test_a_schema_error_before_a_forbidden_byte_wins_among_many_products(char: str) -> None:
    items = list(PLAIN)
    items[100] = '{"price": "1"}'
    items[150] = char + items[150]
    assert_outcome_everywhere(
        products(*items), ("InvalidSchema", "products[100].price: expected a number, got a string")
    )


@pytest.mark.parametrize("char", FORBIDDEN)
def test_a_forbidden_byte_before_a_schema_error_wins_among_many_products(char: str) -> None:
    items = list(PLAIN)
    items[100] = char + items[100]
    items[150] = '{"price": "1"}'
    document = products(*items)
    assert_outcome_everywhere(document, forbidden_outcome(char, document.index(char.encode())))


@pytest.mark.parametrize("char", FORBIDDEN)
def test_the_fast_path_refuses_a_batch_with_a_forbidden_byte(char: str) -> None:
    batch = f'{{"price": 1}},{char}{{"price": 2}}'.encode()
    assert fast.decode_batch(batch.replace(char.encode(), b" "), Decimal(0)) == (2, Decimal(3))
    assert fast.decode_batch(batch, Decimal(0)) is None


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"\xe2\x82", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"],
    ids=["0xff", "truncated 3-byte", "truncated 2-byte", "surrogate", "overlong"],
)
def test_invalid_utf8_deep_in_the_fast_path_region(
    monkeypatch: pytest.MonkeyPatch, bad: bytes
) -> None:
    # msgspec does not check UTF-8 inside strings: the fast path must, or this would be totalled.
    items = [item.encode() for item in PLAIN]
    items[150] = items[150].replace(b'"p150"', b'"p' + bad + b'"')
    document = b'{"market": "m", "products": [' + b", ".join(items) + b'], "end": true}'
    batches = CountingBatches(monkeypatch)

    for read_size in (64, 4096, totals.READ_SIZE):
        assert outcome(document, fast=True, read_size=read_size) == (
            "InvalidJSON",
            "the document is not valid UTF-8",
        )
    assert outcome(document, fast=False) == ("InvalidJSON", "the document is not valid UTF-8")
    assert batches.accepted > 0
    assert batches.refused > 0


# --- generated documents ------------------------------------------------------------------------

_PRICES = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(["-0", "0.10", "1e2", "1E-3", "-7.50", "1e400", '"1"', "true", "null", "[]"]),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_TRICKY = st.sampled_from(
    ['"},{"', '"\\"price\\""', '"}"', '"\\u0070"', '"é"', '{"price": 1}', '"\x0b"', '"\x0c"']
)


@st.composite
def _product(draw: st.DrawFn) -> str:
    fields = [f'"price": {draw(_PRICES)}']
    for _ in range(draw(st.integers(0, 2))):
        value = (
            draw(_TRICKY)
            if draw(st.booleans())
            else json.dumps(draw(_JSON), ensure_ascii=draw(st.booleans()))
        )
        fields.insert(
            draw(st.integers(0, len(fields))),
            f'"{draw(st.sampled_from(["n", "a", "price"]))}": {value}',
        )
    return "{" + draw(st.sampled_from([",", ", "])).join(fields) + "}"


@st.composite
def _document(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(_product(), max_size=25))
    document = products(*items, sep=draw(st.sampled_from([",", ", ", ",\n"])))
    for _ in range(draw(st.integers(0, 2))):  # damage it, or not
        at = draw(st.integers(0, len(document)))
        insert = draw(
            st.sampled_from(
                [b"", b"}", b",", b'"', b"\\", b"\xff", b"]", b"{", b" 1", b"\x0b", b"\x0c"]
            )
        )
        cut = draw(st.integers(0, 2))
        document = document[:at] + insert + document[at + cut :]
    return document


@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(_document())
def test_generated_documents_agree(document: bytes) -> None:
    expected = outcome(document, fast=False)
    for read_size in (2, 32, 4096):
        assert outcome(document, fast=True, read_size=read_size) == expected
