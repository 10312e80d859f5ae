"""The exact messages of the core's refusals, and the padding rule of sequencers. Written to kill
mutants that ``make mutation`` found surviving (docs/mutation.md): each message is what a result
document's ``error.message`` tells whoever uploaded the input."""

from __future__ import annotations

import io

import pytest

from handler import totals
from handler.ordering import later_sequencer
from handler.totals import InvalidDocument, total_prices


def refusal(document: bytes) -> tuple[str, str]:
    with pytest.raises(InvalidDocument) as raised:
        total_prices(io.BytesIO(document))
    return raised.value.code, raised.value.message


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        (
            b'{"products": [{"price": 1e9999999999999999999}]}',
            "InvalidSchema",
            "a number's exponent is beyond the supported range",
        ),
        (
            b'{"products": [{"price": ' + b"9" * 5000 + b"}]}",
            "InvalidSchema",
            "a number has more digits than supported",
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
def test_each_refusal_says_what_is_wrong(document: bytes, code: str, message: str) -> None:
    assert refusal(document) == (code, message)


@pytest.mark.parametrize(
    ("sequencer", "other", "later"),
    [("B", "0A", True), ("0A", "B", False), ("0B", "A", False), ("A", "0B", True)],
)
def test_sequencers_are_right_padded_with_zeros_not_spaces(
    sequencer: str, other: str, later: bool
) -> None:
    assert later_sequencer(sequencer, other) is later


# --- the byte source's edges (survivors of Source._read and Parser.push) ------------------------


def test_half_a_bom_and_then_the_end_is_invalid_json_not_an_empty_document() -> None:
    # The two bytes are read, found not to be a BOM, and parsed: yajl refuses them.
    assert refusal(b"\xef\xbb") == (
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


def test_a_schema_error_before_an_integer_too_long_to_convert_wins() -> None:
    # yajl2_c appends the half-built number before it fails; only that event is dropped, so the
    # array that came just before it is still seen, and reported first.
    document = b'{"products": [[1' + b"0" * 5000 + b"]]}"
    assert refusal(document) == ("InvalidSchema", "products[0]: expected an object, got an array")
