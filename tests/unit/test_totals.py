"""The pure core: exact totals, and each invalid-input class of docs/behaviour.md with code and
place."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler import totals
from handler.totals import (
    MAX_TOTAL_DIGITS,
    InvalidDocument,
    Total,
    format_total,
    too_large,
    total_prices,
)
from tests.support import examples


class ChunkedReader:
    """A stream that hands out at most ``step`` bytes per read, like a slow network body, so
    tokens are split across reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        n = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


def total_of(document: bytes | str, step: int | None = None) -> Total:
    data = document.encode() if isinstance(document, str) else document
    stream = io.BytesIO(data) if step is None else ChunkedReader(data, step)
    return total_prices(stream)


def error_of(document: bytes | str) -> tuple[str, str]:
    with pytest.raises(InvalidDocument) as caught:
        total_of(document)
    return caught.value.code, caught.value.message


# --- exact totals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected", "count"),
    [
        ('{"products": [{"price": 150}, {"price": 250}]}', "400", 2),
        ('{"products": [{"price": 0.1}, {"price": 0.2}]}', "0.3", 2),
        ('{"products": [{"price": 150.00}, {"price": 250.00}]}', "400.00", 2),
        ('{"products": []}', "0", 0),
        ('{"products": [{"price": -5}, {"price": 2.5}]}', "-2.5", 2),
        ('{"products": [{"price": 1E+2}, {"price": 1}]}', "101", 2),
        ('{"products": [{"price": 1.5e-3}]}', "0.0015", 1),
        ('{"products": [{"price": 1e400}]}', "1" + "0" * 400, 1),
        (
            '{"products": [{"price": 12345678901234567890123456789012345678901234567890},'
            ' {"price": 0.00000000000000000000000000000000000000000000000001}]}',
            "12345678901234567890123456789012345678901234567890."
            "00000000000000000000000000000000000000000000000001",
            2,
        ),
    ],
)
def test_exact_total_in_plain_notation_keeping_scale(
    document: str, expected: str, count: int
) -> None:
    result = total_of(document)
    assert format_total(result.total) == expected
    assert result.product_count == count


def test_other_keys_anywhere_are_ignored() -> None:
    document = {
        "market": {"products": "not these", "price": 9},
        "products": [
            {"name": "a", "price": 1, "tags": [{"price": 100}], "meta": {"products": []}},
            {"price": 2, "price_history": [1, 2, 3], "nested": [[[{"price": "x"}]]]},
        ],
        "footer": [None, True, False, "price"],
    }
    result = total_of(json.dumps(document))
    assert result == Total(total=Decimal(3), product_count=2)


def test_leading_utf8_bom_is_accepted() -> None:
    assert total_of(b'\xef\xbb\xbf{"products": [{"price": 7}]}').total == 7


def test_non_ascii_text_is_fine() -> None:
    document = '{"märkte": "Käse €", "products": [{"name": "日本", "price": 1.25}]}'
    assert total_of(document.encode("utf-8")).total == Decimal("1.25")


# Numbers as JSON text: the strategy controls the exact digits the document carries.
_digits = st.text("0123456789", min_size=1, max_size=25)
_price_text = st.builds(
    lambda sign, whole, frac, exp: (
        sign
        + str(int(whole))
        + (f".{frac}" if frac else "")
        + (f"e{exp}" if exp is not None else "")
    ),
    st.sampled_from(["", "-"]),
    _digits,
    st.one_of(st.just(""), _digits),
    st.one_of(st.none(), st.integers(min_value=-30, max_value=30)),
)
_noise = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A valid document as text, with the price texts it contains."""
    prices = draw(st.lists(_price_text, max_size=40))
    items = []
    for price in prices:
        extra = draw(st.dictionaries(st.sampled_from(["name", "qty", "tags"]), _noise, max_size=2))
        fields = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in extra.items()]
        fields.insert(draw(st.integers(0, len(fields))), f'"price": {price}')
        items.append("{" + ", ".join(fields) + "}")
    head = draw(st.dictionaries(st.sampled_from(["market", "date"]), _noise, max_size=2))
    members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    members.insert(draw(st.integers(0, len(members))), '"products": [' + ", ".join(items) + "]")
    return ("{" + ", ".join(members) + "}").encode(), prices


@settings(max_examples=examples(300), deadline=None)
@given(documents(), st.sampled_from([None, 1, 7, 4096]))
def test_streamed_total_equals_exact_rational_sum(
    generated: tuple[bytes, list[str]], step: int | None
) -> None:
    data, prices = generated
    result = total_of(data, step)
    # An oracle independent of Decimal arithmetic: exact rationals.
    assert Fraction(result.total) == sum((Fraction(Decimal(p)) for p in prices), Fraction(0))
    assert result.product_count == len(prices)
    # The scale is the finest among the inputs (and never an exponent).
    text = format_total(result.total)
    places = max([0, *(-Decimal(p).as_tuple().exponent for p in prices)])  # type: ignore[operator]
    assert "e" not in text.lower()
    assert len(text.partition(".")[2]) == places


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b"", "empty"),
        (b"   \n", "not valid JSON"),
        (b"not json", "not valid JSON"),
        (b'{"products": [{"price": NaN}]}', "not valid JSON"),
        (b'{"products": [{"price": Infinity}]}', "not valid JSON"),
        (b'{"products": [{"price": -Infinity}]}', "not valid JSON"),
        (b'{"products": [{"price": 1}]', "not valid JSON"),
        (b'{"products": [{"price": 1}]} trailing', "not valid JSON"),
        (b'{"products": [{"price": 1}]}{}', "not valid JSON"),
        (b'{"products": [{"price": 01}]}', "not valid JSON"),
        (b'{"products": [{"price": 1,}]}', "not valid JSON"),
        (b'{"products": [], "name": "\xff"}', "not valid UTF-8"),
        (b'{"products": [], "name": "\xed\xa0\x80"}', "not valid UTF-8"),
        ('{"products": []}'.encode("utf-16"), "not valid JSON"),
    ],
)
def test_invalid_json(document: bytes, fragment: str) -> None:
    code, message = error_of(document)
    assert code == "InvalidJSON"
    assert fragment in message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", "document: expected an object, got an array"),
        ("42", "document: expected an object, got a number"),
        ('"products"', "document: expected an object, got a string"),
        ("null", "document: expected an object, got null"),
        ("{}", "document: missing key 'products'"),
        ('{"product": []}', "document: missing key 'products'"),
        ('{"products": {}}', "products: expected an array, got an object"),
        ('{"products": null}', "products: expected an array, got null"),
        ('{"products": [], "products": []}', "products: duplicate key"),
        ('{"products": [1]}', "products[0]: expected an object, got a number"),
        ('{"products": [{"price": 1}, []]}', "products[1]: expected an object, got an array"),
        ('{"products": [{"price": 1}, {"cost": 2}]}', "products[1]: missing key 'price'"),
        (
            '{"products": [{"price": 1}, {"price": 1}, {"price": 1}, {"price": "9.99"}]}',
            "products[3].price: expected a number, got a string",
        ),
        ('{"products": [{"price": null}]}', "products[0].price: expected a number, got null"),
        ('{"products": [{"price": true}]}', "products[0].price: expected a number, got a boolean"),
        ('{"products": [{"price": [1]}]}', "products[0].price: expected a number, got an array"),
        (
            '{"products": [{"price": {"amount": 1}}]}',
            "products[0].price: expected a number, got an object",
        ),
        ('{"products": [{"price": 1, "price": 2}]}', "products[0].price: duplicate key"),
        (
            '{"products": [{"price": 1e999999999}]}',
            f"products[0].price: the exact total would need more than {MAX_TOTAL_DIGITS} "
            "significant digits",
        ),
    ],
)
def test_invalid_schema_names_the_place(document: str, message: str) -> None:
    assert error_of(document) == ("InvalidSchema", message)


def test_number_beyond_decimal_range_is_invalid_not_a_crash() -> None:
    code, _ = error_of('{"products": [{"price": 1e99999999999999999999}]}')
    assert code == "InvalidSchema"


def test_first_problem_met_decides_schema_before_syntax() -> None:
    # products[0].price is a string long before the document turns into garbage.
    assert error_of('{"products": [{"price": "1"}, {"price": 2}]} garbage')[0] == "InvalidSchema"


def test_first_problem_met_decides_syntax_before_schema() -> None:
    # The syntax error comes first; the missing price of products[1] is never reached.
    assert error_of('{"products": [{"price": 1 2}, {"name": "x"}]}')[0] == "InvalidJSON"
    # A document cut short before its end is InvalidJSON, although 'products' is missing too.
    assert error_of('{"market": "a"')[0] == "InvalidJSON"


# --- bytes strict JSON forbids -------------------------------------------------------------------
# yajl skips vertical tab and form feed as if they were whitespace; JSON allows them nowhere.

FORBIDDEN = {b"\x0b": "vertical tab", b"\x0c": "form feed"}
VALID = b'{"name": "ab", "products": [{"price": 1}, {"price": 2}]}'


def forbidden_message(byte: bytes, offset: int) -> str:
    return (
        f"not valid JSON (a raw {FORBIDDEN[byte]} at offset {offset}; JSON allows it neither as "
        "whitespace nor in a string)"
    )


@pytest.mark.parametrize("byte", FORBIDDEN)
@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(0, id="at the start"),
        pytest.param(VALID.index(b"["), id="between tokens"),
        pytest.param(VALID.index(b'{"price": 2}'), id="between products"),
        pytest.param(VALID.index(b"2}"), id="before a price"),
        pytest.param(VALID.index(b'b"'), id="inside a string"),
        pytest.param(len(VALID), id="trailing"),
    ],
)
@pytest.mark.parametrize("step", [None, 1, 2, 5])
def test_vertical_tab_and_form_feed_are_invalid_json_anywhere(
    byte: bytes, offset: int, step: int | None
) -> None:
    document = VALID[:offset] + byte + VALID[offset:]
    with pytest.raises(InvalidDocument) as caught:
        total_of(document, step)
    assert (caught.value.code, caught.value.message) == (
        "InvalidJSON",
        forbidden_message(byte, offset),
    )


@pytest.mark.parametrize("byte", FORBIDDEN)
@pytest.mark.parametrize("step", [None, 1, 2, 3, 4])
def test_a_forbidden_byte_after_a_bom_counts_the_bom_in_its_offset(
    byte: bytes, step: int | None
) -> None:
    # Small steps split the BOM itself over reads.
    with pytest.raises(InvalidDocument) as caught:
        total_of(b"\xef\xbb\xbf" + byte + VALID, step)
    assert caught.value.message == forbidden_message(byte, 3)


@pytest.mark.parametrize("byte", FORBIDDEN)
def test_only_a_forbidden_byte(byte: bytes) -> None:
    assert error_of(byte) == ("InvalidJSON", forbidden_message(byte, 0))


@pytest.mark.parametrize("byte", FORBIDDEN)
def test_a_schema_error_before_a_forbidden_byte_wins(byte: bytes) -> None:
    document = b'{"products": [{"price": "1"}]' + byte + b"}"
    assert error_of(document) == (
        "InvalidSchema",
        "products[0].price: expected a number, got a string",
    )


@pytest.mark.parametrize("byte", FORBIDDEN)
def test_a_forbidden_byte_before_a_schema_error_wins(byte: bytes) -> None:
    document = b'{"products": [{"price": 1},' + byte + b' {"price": "1"}]}'
    assert error_of(document) == ("InvalidJSON", forbidden_message(byte, 27))


@pytest.mark.parametrize("byte", FORBIDDEN)
def test_a_syntax_error_before_a_forbidden_byte_keeps_its_message(byte: bytes) -> None:
    code, message = error_of(b'{"products": [{"price": 1 2}' + byte + b"]}")
    assert code == "InvalidJSON"
    assert FORBIDDEN[byte] not in message


@pytest.mark.parametrize(("first", "second"), [(b"\x0b", b"\x0c"), (b"\x0c", b"\x0b")])
def test_the_first_of_several_forbidden_bytes_is_reported(first: bytes, second: bytes) -> None:
    document = VALID[:10] + first + VALID[10:20] + second + VALID[20:]
    assert error_of(document) == ("InvalidJSON", forbidden_message(first, 10))


def test_escaped_form_feed_in_a_string_is_fine() -> None:
    assert total_of(b'{"name": "a\\fb\\u000b", "products": [{"price": 1}]}').total == 1


def test_too_large_message_names_size_and_limit() -> None:
    error = too_large(2048, 1024)
    assert (error.code, error.message) == (
        "TooLarge",
        "the object has 2048 bytes; the limit is 1024 bytes",
    )


def test_errors_of_the_stream_itself_propagate_unchanged() -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls <= 2:  # ijson's 0-byte probe, then the first chunk
                return b'{"products": [{"price": 1}' if size else b""
            raise ConnectionResetError("connection reset by peer")

    # A dropped connection is not the document's fault: it must not become InvalidJSON.
    with pytest.raises(ConnectionResetError):
        total_prices(Broken())


# --- the words of each refusal: what a result's error.message tells the uploader ----------------


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        (
            b'{"products": [{"price": 1e9999999999999999999}]}',
            "InvalidSchema",
            "products[0].price: a number's exponent is beyond the supported range",
        ),
        (
            b'{"products": [{"price": ' + b"9" * 5000 + b"}]}",
            "InvalidSchema",
            "products[0].price: an integer has more digits than the 4300 supported",
        ),
        (
            b'{"products": [}',
            "InvalidJSON",
            "not valid JSON (parse error: unallowed token at this point in JSON text)",
        ),
        (
            b'{"products": []',
            "InvalidJSON",
            "not valid JSON (parse error: premature EOF)",
        ),
        (
            # yajl ends this one with a full stop; the message in parentheses does not.
            b'{"products": [x]}',
            "InvalidJSON",
            "not valid JSON (lexical error: invalid char in json text)",
        ),
        (
            # An integer price: 2,001 significant digits, one more than the total may have.
            b'{"products": [{"price": 1' + b"0" * 2000 + b"}]}",
            "InvalidSchema",
            "products[0].price: the exact total would need more than 2000 significant digits",
        ),
        (
            # Exactly 2,000 decimal places is allowed: here the digits run out first.
            b'{"products": [{"price": 1}, {"price": 1e-2000}]}',
            "InvalidSchema",
            "products[1].price: the exact total would need more than 2000 significant digits",
        ),
        (
            b'{"products": [{"price": 1e-2001}]}',
            "InvalidSchema",
            "products[0].price: the exact total would need more than 2000 decimal places",
        ),
    ],
    ids=[
        "exponent",
        "digits",
        "syntax",
        "truncated",
        "lexical",
        "integer too long",
        "2000 places",
        "2001 places",
    ],
)
def test_each_refusal_message_says_what_is_wrong(document: bytes, code: str, message: str) -> None:
    assert error_of(document) == (code, message)


# --- the byte source's edges: a BOM only at the start, a number too long to convert -----------


def test_half_a_bom_and_then_the_end_is_invalid_json_not_an_empty_document() -> None:
    # The two bytes are read, found not to be a BOM, and parsed: yajl refuses them.
    assert error_of(b"\xef\xbb") == (
        "InvalidJSON",
        "not valid JSON (lexical error: invalid char in json text)",
    )


@pytest.mark.parametrize("fast", [True, False])
def test_a_bom_inside_the_document_is_refused_even_at_the_start_of_a_read(fast: bool) -> None:
    # Only the object's first bytes may be a BOM: one that a later read begins with is a stray
    # character between tokens, and the document is not JSON.
    head = b'{"products": []'
    document = head + b"\xef\xbb\xbf}"
    with pytest.raises(InvalidDocument) as raised:
        totals._total(io.BytesIO(document), fast=fast, read_size=len(head))
    assert (raised.value.code, raised.value.message) == (
        "InvalidJSON",
        "not valid JSON (lexical error: invalid char in json text)",
    )


DIGITS_4301 = "9" * 4301


@pytest.mark.parametrize(
    ("document", "place"),
    [
        (
            f'{{"products": [{{"price": 1}}, {{"price": 2}}, {{"price": 3}}, '
            f'{{"price": {DIGITS_4301}}}]}}',
            "products[3].price",
        ),
        (f'{{"products": [{{"price": 1}}, {{"n": [{DIGITS_4301}], "price": 2}}]}}', "products[1]"),
        (f'{{"products": [{{"price": 1}}, {DIGITS_4301}]}}', "products[1]"),
        (f'{{"products": {DIGITS_4301}}}', "products"),
        (f'{{"name": {DIGITS_4301}, "products": []}}', "document"),
        (f'{{"products": [], "name": {{"n": {DIGITS_4301}}}}}', "document"),
        (DIGITS_4301, "document"),
    ],
    ids=["price", "ignored key of a product", "item", "products", "before", "after", "root"],
)
@pytest.mark.parametrize("step", [None, 7])
def test_a_number_too_long_to_convert_is_named_by_its_place(
    document: str, place: str, step: int | None
) -> None:
    # Python converts integers of at most 4,300 digits; the parser fails before the number's
    # event exists, and the walker, which knows where it is, names the place.
    with pytest.raises(InvalidDocument) as caught:
        total_of(document, step)
    assert (caught.value.code, caught.value.message) == (
        "InvalidSchema",
        f"{place}: an integer has more digits than the 4300 supported",
    )


def test_a_schema_error_before_an_integer_too_long_to_convert_wins() -> None:
    # yajl2_c appends the half-built number before it fails; only that event is dropped, so the
    # array that came just before it is still seen, and reported first.
    document = b'{"products": [[1' + b"0" * 5000 + b"]]}"
    assert error_of(document) == ("InvalidSchema", "products[0]: expected an object, got an array")
