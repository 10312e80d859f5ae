"""Pure ordering rules: is this event a duplicate, stale, later, or unordered against the result?

S3 delivers events at least once and out of order; the result must never go backwards and must
converge to the total of the key's current object (``docs/behaviour.md``, "Ordering"). Not every
emitter's sequencer means anything (LocalStack sends one constant value, sample events send
``"Happy Sequencer"``, Batch Operations and backfills send none), so a sequencer is trusted only
where it can order two events: both present, both hexadecimal, and different. Where it cannot,
the key's current object decides instead (``Plan.UNORDERED``). Whatever the plan, what is read
is the key's current object, and only if it is the version the event names (``storage``): a
version behind a delete marker is never totalled again.

Nothing here does I/O: the rules are tested on their own, and ``handler.flows`` applies them.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from enum import Enum
from typing import Final

_HEX: Final = frozenset(string.hexdigits)

#: The longest sequencer S3 emits is well under this; anything longer is not S3's, and is
#: treated as absent (never compared, never stored as metadata, which S3 caps at 2 KB).
MAX_SEQUENCER_DIGITS: Final = 32


class Plan(Enum):
    """What to do with an event, given the result that is stored now."""

    #: The stored result already comes from the version this event names: nothing to do.
    DUPLICATE = "duplicate"
    #: The stored result comes from a later event of the same key (by sequencer). This stops
    #: the record only once the key confirms it: the event's version is not the key's current
    #: object (a sequencer only saves requests; a forged one must not freeze the key).
    STALE = "stale"
    #: The event is later than the stored result (by sequencer): what the read finds is totalled.
    LATER = "later"
    #: Sequencers cannot order it: the read decides. Where the key's current object is the
    #: version the stored result reflects, there is nothing to do.
    UNORDERED = "unordered"


@dataclass(frozen=True)
class Version:
    """Which version of one key a result was computed from, or an event names.

    ``version_id`` is ``None`` in an unversioned bucket, ``etag`` (without quotes) ``None`` where
    the emitter sends none (Batch Operations), ``sequencer`` ``None`` where it sends none.
    """

    version_id: str | None
    etag: str | None
    sequencer: str | None

    def same_as(self, other: Version) -> bool:
        """The same source version: compared by version id where both have one, else by ETag
        (a listing names no version: a backfill's current object matches a live event's result
        by its bytes' ETag, and the same bytes give the same total)."""
        if self.version_id and other.version_id:
            return self.version_id == other.version_id
        return bool(self.etag) and self.etag == other.etag


def is_real_sequencer(sequencer: str | None) -> bool:
    """Whether ``sequencer`` can order anything: in the form S3 emits, a non-empty hexadecimal
    string of at most ``MAX_SEQUENCER_DIGITS`` digits. Any other is treated as absent."""
    return (
        bool(sequencer)
        and len(sequencer or "") <= MAX_SEQUENCER_DIGITS
        and _HEX.issuperset(sequencer or "")
    )


def later_sequencer(sequencer: str, other: str) -> bool | None:
    """Whether ``sequencer`` names a later event than ``other``; ``None`` where the two cannot be
    ordered (either is not hexadecimal, or they are equal).

    S3's rule (the current "Event message structure" page of its user guide) is to right-pad the
    shorter with zeros and then compare: sequencers grow by appending digits, so the shorter one
    is a prefix-aligned number, not a smaller one. After padding to one length, comparing them as
    hexadecimal numbers is that comparison, and it also holds across letter case (EventBridge
    sends lowercase, notifications uppercase). An older edition of that page said left-pad.
    """
    if not (is_real_sequencer(sequencer) and is_real_sequencer(other)):
        return None
    width = max(len(sequencer), len(other))
    mine, theirs = int(sequencer.ljust(width, "0"), 16), int(other.ljust(width, "0"), 16)
    if mine == theirs:
        return None
    return mine > theirs


def plan(event: Version, stored: Version | None) -> Plan:
    """How to handle ``event`` given the source of the result stored for its key (``None``: no
    result yet, or one computed from another key: two inputs of one folder share one result key,
    and their sequencers say nothing about each other)."""
    if stored is None:
        return Plan.LATER if is_real_sequencer(event.sequencer) else Plan.UNORDERED
    if event.same_as(stored):
        return Plan.DUPLICATE
    if event.sequencer and stored.sequencer:
        later = later_sequencer(event.sequencer, stored.sequencer)
        if later is not None:
            return Plan.LATER if later else Plan.STALE
    return Plan.UNORDERED
