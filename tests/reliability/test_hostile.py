"""Hostile input through the whole handler (in-process moto): generated documents, arbitrary
bytes, and the classic attacks on a JSON reader.

The promise (docs/behaviour.md): the handler never raises for input; it writes either an
``ok`` result with an exact total in plain notation or an ``invalid`` one whose code is
``InvalidJSON``, ``InvalidSchema`` or ``TooLarge``. Objects over ``MAX_INPUT_BYTES`` get
``TooLarge`` without their body being read.
"""

from __future__ import annotations

import itertools
import json
import re
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.app import lambda_handler
from localrun.invoke import LocalContext
from tests.faults import market, on_handler_clients
from tests.support import BUCKET, examples, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CODES = {"InvalidJSON", "InvalidSchema", "TooLarge"}
_keys = itertools.count()
# The function-scoped fixtures here (fake credentials, one moto bucket) hold no per-example
# state: each example writes its own key.
FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def handle(s3: S3Client, body: bytes) -> dict[str, Any]:
    """Store ``body`` as a fresh market, invoke the handler, check the result's shape, return it.

    Raises whatever the handler raises: for input, it must raise nothing.
    """
    key = f"hostile/{next(_keys)}/market_infos.json"
    summary = lambda_handler(upload(s3, key, body, sequencer="0A"), LocalContext())
    status = summary["records"][0]["status"]
    raw = s3.get_object(Bucket=BUCKET, Key=summary["records"][0]["result_key"])["Body"].read()
    result: dict[str, Any] = json.loads(raw, parse_float=Decimal)
    assert result["status"] == status
    assert result["source"]["key"] == key
    if status == "ok":
        total = re.search(rb'"total": ([^,]*),', raw)
        assert total is not None
        assert re.fullmatch(rb"-?[0-9]+(\.[0-9]+)?", total.group(1)), total.group(1)[:80]
    else:
        assert status == "invalid"
        assert result["error"]["code"] in CODES
    return result


# --- generated input -----------------------------------------------------------------------------

_number = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,60})(\.[0-9]{1,60})?([eE][+-]?[0-9]{1,12})?", fullmatch=True),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "1e999999999", "-0", "01", "1."]),
)
_string = st.one_of(
    st.text(max_size=30).map(json.dumps),
    st.text(max_size=30).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.text(max_size=10).map(lambda s: f'"{s}"'),  # raw: control characters, quotes, backslashes
)
_key = st.one_of(st.sampled_from(['"products"', '"price"', '"name"']), _string)


def _render(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """JSON-like text: objects may repeat keys, arrays and objects nest."""
    pairs = st.lists(st.tuples(_key, children), max_size=4)
    return st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        pairs.map(lambda ps: "{" + ",".join(f"{k}:{v}" for k, v in ps) + "}"),
    )


_value = st.recursive(
    st.one_of(_number, _string, st.sampled_from(["true", "false", "null"])), _render, max_leaves=20
)
_product = st.lists(st.tuples(_key, _value), max_size=4).flatmap(
    lambda pairs: st.tuples(st.just(pairs), st.one_of(_number, _value), st.booleans())
)


def _product_text(product: tuple[list[tuple[str, str]], str, bool]) -> str:
    pairs, price, with_price = product
    members = [f"{k}:{v}" for k, v in pairs] + ([f'"price":{price}'] if with_price else [])
    return "{" + ",".join(members) + "}"


_market = st.tuples(
    st.booleans(),
    st.lists(st.tuples(_key, _value), max_size=3),
    st.lists(st.one_of(st.builds(_product_text, _product), _value), max_size=6),
).map(
    lambda doc: (
        ("\ufeff" if doc[0] else "")
        + "{"
        + "".join(f"{k}:{v}," for k, v in doc[1])
        + '"products":['
        + ",".join(doc[2])
        + "]}"
    )
)


@FUZZ
@given(document=st.one_of(_market, _value))
def test_generated_documents_never_crash_the_handler(s3: S3Client, document: str) -> None:
    handle(s3, document.encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(b'{"products":['.__add__))
)
def test_arbitrary_bytes_never_crash_the_handler(s3: S3Client, body: bytes) -> None:
    handle(s3, body)


_price = st.from_regex(
    r"-?(0|[1-9][0-9]{0,49})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?", fullmatch=True
)


@FUZZ
@given(prices=st.lists(_price, max_size=30), extra=st.text(max_size=20))
def test_generated_valid_markets_total_exactly(s3: S3Client, prices: list[str], extra: str) -> None:
    result = handle(s3, market(prices, name=json.dumps(extra)[1:-1]))
    with localcontext(prec=500):
        assert result["total"] == sum((Decimal(p) for p in prices), Decimal(0))
    assert (result["status"], result["product_count"]) == ("ok", len(prices))


# --- known attacks -------------------------------------------------------------------------------

DEEP = 100_000
CASES: dict[str, tuple[bytes, str]] = {
    "deep nesting in an ignored key": (
        b'{"x": ' + b"[" * DEEP + b"]" * DEEP + b', "products": [{"price": 1}]}',
        "ok",
    ),
    "deep nesting never closed": (b"[" * DEEP, "InvalidSchema"),
    "deep nesting as products": (b'{"products": ' + b"[" * DEEP, "InvalidSchema"),
    "deep objects never closed": (b'{"a":' * DEEP, "InvalidJSON"),
    "1e400": (b'{"products": [{"price": 1e400}]}', "ok"),
    "1e999999999": (b'{"products": [{"price": 1e999999999}]}', "InvalidSchema"),
    "1e-999999999": (b'{"products": [{"price": 1e-999999999}]}', "InvalidSchema"),
    "0e-999999999": (b'{"products": [{"price": 0e-999999999}]}', "InvalidSchema"),
    "exponent beyond Decimal": (
        b'{"products": [{"price": 1e999999999999999999}]}',
        "InvalidSchema",
    ),
    "5000-digit integer": (b'{"products": [{"price": ' + b"9" * 5000 + b"}]}", "InvalidSchema"),
    "5000-digit integer in an ignored key": (
        b'{"n": ' + b"9" * 5000 + b', "products": []}',
        "InvalidSchema",
    ),
    # Contract r4: a value longer than MAX_VALUE_BYTES (1 MiB) is refused, not held.
    "very long string": (
        b'{"products": [{"name": "' + b"x" * 5_000_000 + b'", "price": 2}]}',
        "InvalidSchema",
    ),
    "very long key": (b'{"' + b"k" * 1_000_000 + b'": 1, "products": []}', "ok"),
    "duplicate products": (b'{"products": [], "products": []}', "InvalidSchema"),
    "duplicate price": (b'{"products": [{"price": 1, "price": 2}]}', "InvalidSchema"),
    "duplicate ignored key": (b'{"products": [{"n": 1, "n": 2, "price": 3}]}', "ok"),
    "BOM": (b'\xef\xbb\xbf{"products": [{"price": 1}]}', "ok"),
    "BOM twice": (b'\xef\xbb\xbf\xef\xbb\xbf{"products": []}', "InvalidJSON"),
    "form feed as whitespace": (b'\x0c{"products": [{"price": 1}]}', "InvalidJSON"),
    "vertical tab as whitespace": (b'{"products": [{"price": 1}]}\x0b', "InvalidJSON"),
    "form feed after a BOM": (b'\xef\xbb\xbf\x0c{"products": []}', "InvalidJSON"),
    "raw control character in a key": (b'{"a\x01b": 1, "products": []}', "InvalidJSON"),
    "raw newline in a key": (b'{"a\nb": 1, "products": []}', "InvalidJSON"),
    "escaped NUL in a key": (b'{"a\\u0000b": 1, "products": [{"price": 1}]}', "ok"),
    "escaped NUL in products' key": (
        b'{"products\\u0000": [{"price": "x"}], "products": []}',
        "ok",
    ),
    "NaN": (b'{"products": [{"price": NaN}]}', "InvalidJSON"),
    "Infinity": (b'{"products": [{"price": Infinity}]}', "InvalidJSON"),
    "empty": (b"", "InvalidJSON"),
    "only whitespace": (b" \n\t ", "InvalidJSON"),
    "UTF-16": ('{"products": []}'.encode("utf-16"), "InvalidJSON"),
    "invalid UTF-8 in a string": (b'{"n": "\xff\xfe", "products": []}', "InvalidJSON"),
    "lone surrogate escape": (b'{"n": "\\ud800", "products": [{"price": 1}]}', "ok"),
    "trailing garbage": (b'{"products": []} x', "InvalidJSON"),
    "two documents": (b'{"products": []}{"products": []}', "InvalidJSON"),
    "price as string": (b'{"products": [{"price": "1"}]}', "InvalidSchema"),
}


@pytest.mark.parametrize("case", CASES)
def test_known_attacks_get_the_contracts_answer(s3: S3Client, case: str) -> None:
    body, expected = CASES[case]

    result = handle(s3, body)

    assert result["status"] == "ok" if expected == "ok" else result["error"]["code"] == expected


def test_1e400_is_totalled_exactly_in_plain_notation(s3: S3Client) -> None:
    result = handle(s3, b'{"products": [{"price": 1e400}, {"price": 0.5}]}')
    assert result["total"] == Decimal("1" + "0" * 400 + ".5")


# --- TooLarge without reading --------------------------------------------------------------------


class _Meter:
    """Counts the bytes the handler reads of each source body (a hook on GetObject's body)."""

    def __init__(self) -> None:
        self.read = 0
        self.closed = False

    def install(self, client: S3Client) -> None:
        client.meta.events.register("after-call.s3.GetObject", self._wrap)

    def _wrap(self, parsed: dict[str, Any], **_: Any) -> None:
        body = parsed["Body"]
        meter = self

        class Metered:
            def read(self, size: int = -1) -> bytes:
                data: bytes = body.read(size)
                meter.read += len(data)
                return data

            def close(self) -> None:
                meter.closed = True
                body.close()

        parsed["Body"] = Metered()


@pytest.mark.parametrize(("limit", "read"), [(1_000, 0), (10_000_000, None)])
def test_objects_over_the_limit_are_answered_too_large_unread(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, limit: int, read: int | None
) -> None:
    body = market([str(n) for n in range(100_000)])  # about 1.5 MB
    monkeypatch.setenv("MAX_INPUT_BYTES", str(limit))
    meter = _Meter()
    on_handler_clients(monkeypatch, meter.install)

    result = handle(s3, body)

    # The meter works (an object under the limit is read whole), and none of one over it is read.
    assert meter.read == (len(body) if read is None else read)
    assert meter.closed
    assert (result["status"] == "invalid") is (read == 0)
    if read == 0:
        assert result["error"]["code"] == "TooLarge"
        assert result["source"]["size"] == len(body)
