"""The one decimal context both paths add in, so that they refuse exactly the same totals.

Prices are read as ``int`` or ``Decimal`` from their text (never ``float``), and every addition
traps any rounding: a total is exact, or the document is refused. The traps also bound the work:
a hostile number is refused at its first addition, never expanded.
"""

from __future__ import annotations

import decimal
from typing import Final

#: Significant digits the running total may reach before it could no longer be exact. Prices of up
#: to 50 significant digits at any sensible mix of scales stay far below it; a hostile document
#: (``1e999999 + 1``) is refused instead of allocating a million-digit number.
MAX_TOTAL_DIGITS: Final = 2_000

#: Decimal places the total may have. The total is written in plain notation keeping its scale,
#: so without this bound a single ``1e-999999999`` (or ``0e-999999999``) would be a total of a
#: billion digits: gigabytes of output from a 40-byte document.
MAX_DECIMAL_PLACES: Final = 2_000

EXACT: Final = decimal.Context(
    prec=MAX_TOTAL_DIGITS,
    Emax=decimal.MAX_EMAX,
    # The smallest exponent a result may have is Emin - prec + 1 (``Etiny``): -MAX_DECIMAL_PLACES.
    Emin=MAX_TOTAL_DIGITS - 1 - MAX_DECIMAL_PLACES,
    # Any rounding would make the total inexact: fail instead of rounding. Clamped is a zero whose
    # exponent was below Etiny, so more decimal places than allowed too.
    traps=[
        decimal.Inexact,
        decimal.Rounded,
        decimal.Overflow,
        decimal.InvalidOperation,
        decimal.Clamped,
    ],
)
