"""Deterministic benchmark documents, written in pieces so that even the 1 GB one never sits in
memory whole. The same size always gives the same bytes, so runs and machines compare."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

PRODUCTS_PER_PIECE = 10_000

_HEAD = b'{"market": "bench", "currency": "EUR", "products": ['
_TAIL = b'], "generated_by": "bench/data.py"}\n'


def _product(i: int) -> str:
    # A realistic product: ignored fields of several types, a nested object (its "}," must not
    # be taken for the end of a product) and prices with two decimals or none.
    cents = (i * 7919) % 1_000_000
    price = str(cents // 100) if i % 10 == 0 else f"{cents // 100}.{cents % 100:02d}"
    return (
        f'{{"id": {i}, "sku": "SKU-{i:08d}", "name": "Product {i}", "price": {price}, '
        f'"stock": {i % 97}, "attributes": {{"color": "c{i % 7}", "size": "s{i % 5}"}}, '
        f'"tags": ["t{i % 3}", "t{i % 11}"], "active": {"true" if i % 2 else "false"}}}'
    )


def _price(i: int) -> Decimal:
    cents = (i * 7919) % 1_000_000
    return Decimal(cents // 100) if i % 10 == 0 else Decimal(cents).scaleb(-2)


def pieces(target_bytes: int) -> Iterator[bytes]:
    """The document as byte pieces: products are added until it reaches ``target_bytes``."""
    yield _HEAD
    written = len(_HEAD) + len(_TAIL)
    i = 0
    while written < target_bytes:
        items = []
        for j in range(i, i + PRODUCTS_PER_PIECE):
            text = _product(j) if j == 0 else ", " + _product(j)
            items.append(text)
            written += len(text)
            if written >= target_bytes:
                break
        i += len(items)
        yield "".join(items).encode()
    yield _TAIL


def ensure(directory: Path, target_bytes: int) -> Path:
    """The document of about ``target_bytes`` in ``directory``, generated once and reused."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"products-{target_bytes}.json"
    if not path.exists():
        partial = path.with_suffix(".part")
        with partial.open("wb") as out:
            for piece in pieces(target_bytes):
                out.write(piece)
        partial.rename(path)
    return path


def expected_total(target_bytes: int) -> tuple[Decimal, int]:
    """The exact total and count of the document, computed without parsing it (a cross-check)."""
    count = 0
    total = Decimal(0)
    for piece in pieces(target_bytes):
        count += piece.count(b'"price"')
    for i in range(count):
        total += _price(i)
    return total, count
