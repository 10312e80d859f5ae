"""The product rule: which member of a product is its price, and which products the total adds.

**This is the one place to change which products count.** Both paths derive from it:

- the exact path (``exact``) hands each product's members named in ``READS`` to ``counts``, and
  adds the price of a product only if ``counts`` says so;
- the fast path (``fast``) declines every batch in which a member named in ``READS`` may appear,
  in any spelling (``"\\u0061vailable"`` is ``"available"``), and adds the others only if
  ``counts`` says a product holding none of them counts. So a rule on a member makes the exact
  path read the products that hold it, and the two paths cannot disagree.

``counts`` may look only at members named in ``READS``: asking for another raises at once, on
the first product of any document, so a member forgotten here fails every test instead of being
ignored by one path. ``tests/unit/test_total_rule.py`` compares the exact path, the whole
pipeline and a ``json.loads`` reading of this rule on generated products with arbitrary members.

Today every product counts, and no member but the price is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from enum import Enum
from typing import Final

#: The member whose number is added: required, a number, once per product (``docs/behaviour.md``).
PRICE: Final = "price"

#: The members other than ``PRICE`` that ``counts`` reads.
READS: Final[frozenset[str]] = frozenset()


class Nested(Enum):
    """A member whose value is an object or an array: the rule sees its kind, not its content
    (the exact path streams past it, so memory stays flat)."""

    OBJECT = "an object"
    ARRAY = "an array"


#: A member's value as the rule sees it: JSON's scalars as the parser reads them (a number is an
#: ``int``, or a ``Decimal`` where it has a point or an exponent), containers as ``Nested``.
Member = None | bool | int | Decimal | str | Nested


def counts(members: Mapping[str, Member]) -> bool:
    """Whether a product's price is added to the total.

    ``members`` holds the product's members named in ``READS`` that it has (the last, where one
    appears twice). A product that does not count is still checked (its price must be there and
    be a number) and still counted in ``product_count``; only its price is not added.
    """
    del members  # every product counts
    return True


# --- what follows enforces the rule's contract: no need to change it ---------------------------


class Members(Mapping[str, Member]):
    """A product's members named in ``READS``, as ``counts`` is given them. Asking for any other
    member raises: the fast path ignores every member ``READS`` does not name, so a rule reading
    one must fail loudly, on any document, rather than count differently on a large one."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Member]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Member:
        if key not in READS:
            raise RuntimeError(
                f"rule.counts read the member {key!r}, which rule.READS does not name: "
                "name it there (totals/rule.py)"
            )
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


#: What ``counts`` is given for a product holding no member it reads (the usual one).
NO_MEMBERS: Final = Members({})
