"""Hostile documents (contract r4, "Bounded cost"): no single value is held or re-read whole.

The corpus is generated here, at test time. Each shape gets its outcome, code and message; a
value exactly at ``MAX_VALUE_BYTES`` is accepted and one byte more refused; escapes are cut at
every slice boundary; the bytes yajl is given are counted (a long value is never handed to it
whole, so it cannot re-read it on every push); and, in subprocesses, the peak RSS of the
multi-megabyte shapes stays under the 128 MB the function is sized for.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from handler.rules.settings import ConfigurationError, Settings
from handler.totals import (
    DEFAULT_MAX_VALUE_BYTES,
    READ_SIZE,
    InvalidDocument,
    Total,
    _total,
    total_prices,
)
from handler.totals.exact import MAX_DEPTH
from handler.totals.parser import Parser

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 4096  # a small MAX_VALUE_BYTES, so that "at the limit" cases stay small
RSS_BOUND_MB = 128


def outcome(
    doc: bytes, *, limit: int = DEFAULT_MAX_VALUE_BYTES, read_size: int = READ_SIZE
) -> Total | tuple[str, str]:
    """The core's answer for ``doc``: a ``Total`` or ``(code, message)``."""
    try:
        return _total(io.BytesIO(doc), fast=True, max_value_bytes=limit, read_size=read_size)
    except InvalidDocument as error:
        return (error.code, error.message)


def too_long(place: str, kind: str, limit: int = DEFAULT_MAX_VALUE_BYTES) -> tuple[str, str]:
    return ("InvalidSchema", f"{place}: {kind} longer than MAX_VALUE_BYTES ({limit} bytes)")


def name_of(token_bytes: int) -> bytes:
    """A JSON string whose text (quotes included) is ``token_bytes`` long."""
    return b'"' + b"n" * (token_bytes - 2) + b'"'


def product_with_name(token_bytes: int) -> bytes:
    return b'{"products": [{"price": 1, "name": ' + name_of(token_bytes) + b"}]}"


@pytest.mark.parametrize("limit", [LIMIT, DEFAULT_MAX_VALUE_BYTES])
def test_a_string_exactly_at_the_limit_is_read_and_one_byte_more_is_refused(limit: int) -> None:
    assert outcome(product_with_name(limit), limit=limit) == Total(Decimal(1), 1)
    assert outcome(product_with_name(limit + 1), limit=limit) == too_long(
        "products[0]", "a string", limit
    )


def test_a_number_exactly_at_the_limit_is_read_and_one_byte_more_is_refused() -> None:
    limit = 1024  # an integer of 1,024 digits is still a price the total can hold exactly
    at_limit = b"1" + b"0" * (limit - 1)
    doc = b'{"products": [{"price": %s}]}'
    assert outcome(doc % at_limit, limit=limit) == Total(Decimal(at_limit.decode()), 1)
    assert outcome(doc % (at_limit + b"0"), limit=limit) == too_long(
        "products[0].price", "a number", limit
    )


@pytest.mark.parametrize(
    ("doc", "answer"),
    [
        pytest.param(
            b'{"products": [{"price": 1, "n": "' + b"x" * 8_000_000 + b'"}]}',
            too_long("products[0]", "a string"),
            id="long string value",
        ),
        pytest.param(
            b'{"products": [{"price": 1, "' + b"k" * 3_000_000 + b'": 2}]}',
            too_long("products[0]", "a string"),
            id="long key in a product",
        ),
        pytest.param(
            b'{"' + b"k" * 3_000_000 + b'": 2, "products": []}',
            too_long("document", "a string"),
            id="long key at the root",
        ),
        pytest.param(
            b'{"products": [{"price": 1' + b"0" * 3_000_000 + b"}]}",
            too_long("products[0].price", "a number"),
            id="long integer price",
        ),
        pytest.param(
            b'{"products": [{"price": 0.' + b"5" * 5_000_000 + b"}]}",
            too_long("products[0].price", "a number"),
            id="price with millions of decimal places",
        ),
        pytest.param(
            b'{"n": 1' + b"0" * 5_000_000 + b', "products": []}',
            too_long("document", "a number"),
            id="long ignored integer",
        ),
        pytest.param(
            b'{"note": "' + b"x" * 5_000_000 + b'", "products": [{"price": 1}]}',
            too_long("document", "a string"),
            id="long string in an ignored key",
        ),
        pytest.param(
            b'{"products": [{"price": 1, "n": "' + b'\\"' * 2_000_000 + b'"}]}',
            too_long("products[0]", "a string"),
            id="long string of escaped quotes",
        ),
        pytest.param(
            b'{"products": [{"price": 1}, {"price": 2, "n": ' + b"[" * (MAX_DEPTH + 1) + b"]}",
            ("InvalidSchema", f"products[1]: a value nested deeper than {MAX_DEPTH} levels"),
            id="deep nesting of arrays",
        ),
        pytest.param(
            b'{"n": ' + b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1) + b"}",
            ("InvalidSchema", f"document: a value nested deeper than {MAX_DEPTH} levels"),
            id="deep nesting of objects",
        ),
    ],
)
def test_each_hostile_shape_gets_its_answer(doc: bytes, answer: object) -> None:
    assert outcome(doc) == answer


def test_nesting_at_the_limit_is_read() -> None:
    doc = b'{"n": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b', "products": [{"price": 3}]}'
    assert outcome(doc) == Total(Decimal(3), 1)


def test_deep_nesting_inside_products_of_a_large_document_is_totalled_not_raised() -> None:
    """msgspec (the fast path) gives up on nesting it cannot recurse into with a RecursionError;
    the exact path, which has no recursion, decides instead."""
    deep = b'{"price": 2, "n": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    products = [b'{"price": 1}'] * 100_000 + [deep] + [b'{"price": 1}'] * 10
    doc = b'{"products": [' + b", ".join(products) + b"]}"
    assert outcome(doc) == Total(Decimal(100_012), 100_011)


def test_many_small_values_are_read() -> None:
    doc = b'{"n": [' + b"1," * 2_000_000 + b'1], "products": [{"price": 1}]}'
    assert outcome(doc) == Total(Decimal(1), 1)


def test_the_first_problem_still_decides() -> None:
    # A schema error before the long value.
    doc = b'{"products": [{"n": 1}, {"price": 1, "n": ' + name_of(LIMIT * 4) + b"}]}"
    assert outcome(doc, limit=LIMIT) == ("InvalidSchema", "products[0]: missing key 'price'")
    # A syntax error inside the long value's first MAX_VALUE_BYTES bytes.
    doc = b'{"products": [{"price": 1, "n": "abc\x01' + b"x" * LIMIT * 4 + b'"}]}'
    answer = outcome(doc, limit=LIMIT)
    assert isinstance(answer, tuple)
    assert answer[0] == "InvalidJSON"
    # A form feed there.
    doc = b'{"products": [{"price": 1, "n": "abc\x0c' + b"x" * LIMIT * 4 + b'"}]}'
    answer = outcome(doc, limit=LIMIT)
    assert isinstance(answer, tuple)
    assert (answer[0], "form feed" in answer[1]) == ("InvalidJSON", True)
    # A form feed after the point where the value became too long.
    doc = b'{"products": [{"price": 1, "n": "' + b"x" * LIMIT * 2 + b'\x0c"}]}'
    assert outcome(doc, limit=LIMIT) == too_long("products[0]", "a string", LIMIT)


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 64, 1000, 1023])
def test_escapes_cut_at_any_slice_boundary_count_as_the_bytes_they_are(read_size: int) -> None:
    """Strings of random escapes, a token of exactly the limit and one byte over, read in
    slices that cut every escape somewhere: the quote that ends a string is never mistaken."""
    rng = random.Random(read_size)
    pieces = ['"', "\\", "a", "\u00e9", "\n", "{", "}", ",", "1"]
    for _ in range(20):
        text = ""
        while len(json.dumps(text).encode()) < LIMIT - 8:
            text += rng.choice(pieces)
        token = json.dumps(text)
        pad = LIMIT - len(token.encode())  # one byte per 'a' inside the string
        exact = json.dumps(text + "a" * pad).encode()
        over = json.dumps(text + "a" * (pad + 1)).encode()
        assert len(exact) == LIMIT
        at_limit = b'{"products": [{"n": ' + exact + b', "price": 1}]}'
        one_over = b'{"products": [{"n": ' + over + b', "price": 1}]}'
        assert outcome(at_limit, limit=LIMIT, read_size=read_size) == Total(Decimal(1), 1)
        assert outcome(one_over, limit=LIMIT, read_size=read_size) == too_long(
            "products[0]", "a string", LIMIT
        )


def test_a_long_value_is_never_given_to_the_parser_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """yajl re-reads a value a push leaves unfinished on every later push (quadratic time) and
    holds it (memory): the bytes it is given stop at the limit, whatever the value's length."""
    given = []
    push = Parser.push

    def counting(self: Parser, data: bytes | None, *, nothing_read: bool) -> Exception | None:
        given.append(len(data or b""))
        return push(self, data, nothing_read=nothing_read)

    monkeypatch.setattr(Parser, "push", counting)
    for size in (4_000_000, 16_000_000):
        given.clear()
        doc = b'{"products": [{"price": 1, "n": "' + b"x" * size + b'"}]}'
        assert outcome(doc) == too_long("products[0]", "a string")
        assert sum(given) <= DEFAULT_MAX_VALUE_BYTES + 64
        given.clear()
        doc = b'{"n": 1' + b"0" * size + b', "products": []}'
        assert outcome(doc) == too_long("document", "a number")
        assert sum(given) <= DEFAULT_MAX_VALUE_BYTES + 64


def test_max_value_bytes_is_a_setting() -> None:
    assert Settings.from_env({}).max_value_bytes == 1024 * 1024
    assert Settings.from_env({"MAX_VALUE_BYTES": "4096"}).max_value_bytes == 4096
    with pytest.raises(ConfigurationError, match="MAX_VALUE_BYTES"):
        Settings.from_env({"MAX_VALUE_BYTES": "1023"})
    with pytest.raises(ConfigurationError, match="MAX_VALUE_BYTES"):
        Settings.from_env({"MAX_VALUE_BYTES": "1MB"})


def test_the_handler_reads_the_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``total_prices`` is given the setting (``flows.recompute.compute_result``)."""
    from handler.flows import recompute

    seen: list[int] = []

    def spy(stream: object, *, max_value_bytes: int) -> Total:
        seen.append(max_value_bytes)
        return total_prices(stream, max_value_bytes=max_value_bytes)  # type: ignore[arg-type]

    monkeypatch.setattr(recompute, "total_prices", spy)
    source = type("S", (), {"size": 10, "etag": "e", "body": io.BytesIO(b'{"products": []}')})()
    source.close = lambda: None
    read = type("V", (), {"version_id": None, "sequencer": None})()
    settings = Settings.from_env({"MAX_VALUE_BYTES": "2048"})
    outcome_, _ = recompute.compute_result(
        source,
        read,
        bucket="b",
        key="k",
        out_key="o",
        settings=settings,
    )
    assert (outcome_.status, seen) == ("ok", [2048])


PEAK = """
import sys
from handler.totals import InvalidDocument, total_prices
try:
    with open(sys.argv[1], "rb") as f:
        answer = repr(total_prices(f))
except InvalidDocument as error:
    answer = error.code + ": " + error.message
status = open("/proc/self/status").read()
print(answer)
print(int(status.split("VmHWM:")[1].split()[0]) / 1024)
"""

MB = 1_000_000


def _write(path: Path, head: bytes, body: bytes, count: int, tail: bytes) -> None:
    with path.open("wb") as out:
        out.write(head)
        chunk = body * (MB // len(body))
        for _ in range(count * len(body) // len(chunk)):
            out.write(chunk)
        out.write(tail)


@pytest.mark.parametrize(
    ("head", "body", "tail", "answer"),
    [
        pytest.param(b'{"products": [{"price": 0.', b"5", b"}]}", "InvalidSchema", id="price"),
        pytest.param(b'{"products": [], "s": "', b"x", b'"}', "InvalidSchema", id="string"),
        pytest.param(b'{"products": [], "n": 1', b"0", b"}", "InvalidSchema", id="integer"),
        pytest.param(b'{"products": [], "n": ', b"[", b"", "InvalidSchema", id="nesting"),
        pytest.param(b'{"products": [], "n": [', b"1,", b"1]}", "Total", id="small values"),
        pytest.param(
            b'{"products": [{"price": 0}',
            b', {"price": 1.5, "o": {"price": 2}}',
            b"]}",
            "Total",
            id="nested price objects",
        ),
    ],
)
def test_peak_memory_of_a_40_mb_hostile_document_stays_under_128_mb(
    tmp_path: Path, head: bytes, body: bytes, tail: bytes, answer: str
) -> None:
    path = tmp_path / "market_infos.json"
    _write(path, head, body, 40 * MB // len(body), tail)
    run = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result, peak = run.stdout.split("\n")[:2]
    assert result.startswith(answer), result
    assert float(peak) < RSS_BOUND_MB, (result, peak)
