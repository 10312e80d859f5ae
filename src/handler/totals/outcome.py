"""What the core answers: a ``Total`` for a valid document, an ``InvalidDocument`` otherwise.

The error codes and what each means for a caller are described in ``docs/behaviour.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

ErrorCode = Literal["InvalidJSON", "InvalidSchema", "TooLarge"]


@dataclass(frozen=True)
class Total:
    """The outcome of a valid document: the exact sum and how many products it had."""

    total: Decimal
    product_count: int


class InvalidDocument(Exception):
    """The input can never succeed (the same bytes fail the same way): answered, not retried."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message


def too_large(size: int, limit: int) -> InvalidDocument:
    """The ``TooLarge`` error, decided from the object's size before its body is read."""
    return InvalidDocument("TooLarge", f"the object has {size} bytes; the limit is {limit} bytes")


def format_total(total: Decimal) -> str:
    """Plain notation (never an exponent), keeping the scale: ``Decimal('4.00E+2')`` -> ``400``,
    ``Decimal('400.00')`` -> ``400.00``."""
    return format(total, "f")
