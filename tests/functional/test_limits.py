"""The limits at their edges: ``MAX_INPUT_BYTES`` exactly and one byte over, its zero setting,
and hostile numbers that the decimal context's traps must refuse at once (``docs/behaviour.md``).

A limit that is off by one, or a trap that lets a billion-digit number through, is invisible to
tests that stay well inside the limits; these stand on the edges.
"""

from __future__ import annotations

import io
import itertools
from typing import TYPE_CHECKING, Any

import pytest

from handler.app import lambda_handler
from handler.rules.settings import Settings
from handler.totals import InvalidDocument, _total, format_total
from handler.totals.arithmetic import MAX_DECIMAL_PLACES, MAX_TOTAL_DIGITS
from tests.support import read_result, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

BODY = b'{"products": [{"price": 150}, {"price": 250}]}'
_keys = itertools.count()


def handle(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch, body: bytes, limit: int
) -> dict[str, Any]:
    """``body`` as a fresh market, handled with ``MAX_INPUT_BYTES=limit``: its result."""
    monkeypatch.setenv("MAX_INPUT_BYTES", str(limit))
    key = f"limits/{next(_keys)}/market_infos.json"
    summary = lambda_handler(upload(s3, key, body, sequencer="0A"), context)
    result = read_result(s3, summary["records"][0]["result_key"])
    assert result["source"]["size"] == len(body)
    return result


# --- MAX_INPUT_BYTES ------------------------------------------------------------------------------


def test_an_object_of_exactly_max_input_bytes_is_totalled(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = handle(s3, context, monkeypatch, BODY, limit=len(BODY))
    assert (result["status"], result["total"]) == ("ok", 400)


def test_one_byte_over_max_input_bytes_is_too_large(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = BODY + b" "  # still a valid document: only its size is wrong
    result = handle(s3, context, monkeypatch, body, limit=len(BODY))
    assert result["status"] == "invalid"
    assert result["error"] == {
        "code": "TooLarge",
        "message": f"the object has {len(body)} bytes; the limit is {len(BODY)} bytes",
    }


def test_zero_is_a_valid_max_input_bytes() -> None:
    assert Settings.from_env({"MAX_INPUT_BYTES": "0"}).max_input_bytes == 0


@pytest.mark.parametrize("body", [b"{", BODY])
def test_with_max_input_bytes_zero_every_non_empty_object_is_too_large(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    result = handle(s3, context, monkeypatch, body, limit=0)
    assert result["error"] == {
        "code": "TooLarge",
        "message": f"the object has {len(body)} bytes; the limit is 0 bytes",
    }


def test_with_max_input_bytes_zero_an_empty_object_is_read_and_invalid_json(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = handle(s3, context, monkeypatch, b"", limit=0)
    assert result["error"] == {"code": "InvalidJSON", "message": "the document is empty"}


# --- numbers the traps must refuse at once --------------------------------------------------------

DIGITS = f"the exact total would need more than {MAX_TOTAL_DIGITS} significant digits"
PLACES = f"the exact total would need more than {MAX_DECIMAL_PLACES} decimal places"
PLAIN = [f'{{"name": "p{i}", "price": {i}.{i % 100:02d}}}' for i in range(300)]


def market(price: str, *, at: int) -> bytes:
    """Plain products, with ``price`` as products[at]'s (at 150 the fast path is running)."""
    items = [*PLAIN[:at], f'{{"price": {price}}}', *PLAIN[at:]]
    return ('{"products": [' + ", ".join(items) + "]}").encode()


# Without the traps each of these would be expanded digit by digit: a billion digits (or far
# more) of memory and time, or, for the tiny ones, a billion-digit total to write out.
HOSTILE = {
    "1e999999999": DIGITS,
    "-1e999999999": DIGITS,
    "1E+999999999999999999": DIGITS,
    "1e-999999999": PLACES,
    "-1e-999999999999999999": PLACES,
    "0e-999999999": PLACES,
    f"1e-{MAX_DECIMAL_PLACES + 1}": PLACES,
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("price", HOSTILE)
@pytest.mark.parametrize("at", [0, 1, 150])
@pytest.mark.parametrize("fast", [True, False])
def test_hostile_numbers_are_refused_quickly(price: str, at: int, fast: bool) -> None:
    with pytest.raises(InvalidDocument) as caught:
        _total(io.BytesIO(market(price, at=at)), fast=fast)
    assert (caught.value.code, caught.value.message) == (
        "InvalidSchema",
        f"products[{at}].price: {HOSTILE[price]}",
    )


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "price",
    [f"-1e-{MAX_DECIMAL_PLACES}", "-" + "9" * MAX_TOTAL_DIGITS, f"-0e-{MAX_DECIMAL_PLACES}"],
)
def test_the_longest_totals_accepted_stay_short_in_plain_notation(price: str) -> None:
    result = _total(io.BytesIO(b'{"products": [{"price": %b}]}' % price.encode()), fast=True)
    # A sign, the digits, and for a fraction "0." before its places.
    assert len(format_total(result.total)) <= 1 + max(MAX_TOTAL_DIGITS, 2 + MAX_DECIMAL_PLACES)
