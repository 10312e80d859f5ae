"""The pure ordering rules (``handler.rules.ordering``): when sequencers can order two events,
and what decides where they cannot. The S3-facing outcomes are in
tests/functional/test_ordering.py and tests/functional/test_event_sources.py."""

from __future__ import annotations

import pytest

from handler.rules.ordering import Plan, Version, is_real_sequencer, later_sequencer, plan

LOCALSTACK = "0055AED6DCD90281E5"  # the one sequencer LocalStack's S3 sends with every event


@pytest.mark.parametrize(
    ("sequencer", "real"),
    [
        ("0062A1B2C3D4E5F601", True),
        ("0062a1b2c3d4e5f601", True),
        ("F", True),
        ("Happy Sequencer", False),
        ("", False),
        (None, False),
        ("0x1F", False),
        ("12 34", False),
        ("١٢", False),  # digits, but not ASCII hex
    ],
)
def test_only_hexadecimal_sequencers_are_real(sequencer: str | None, real: bool) -> None:
    assert is_real_sequencer(sequencer) is real


@pytest.mark.parametrize(
    ("a", "b", "later"),
    [
        ("0062A1B2C3D4E5F602", "0062A1B2C3D4E5F601", True),
        ("0062A1B2C3D4E5F601", "0062A1B2C3D4E5F602", False),
        # The shorter is right-padded with zeros (S3's user guide): FF00 > 0100.
        ("0100", "FF", False),
        ("FF", "0100", True),
        ("1", "0000000000000000000000000000000F", True),
        ("10", "F", False),
        ("A", "A0", None),  # equal once padded: they cannot be ordered
        ("A1", "A", True),
        ("0062A1B2C3D4E5F601", "0062A1B2C3D4E5F6", True),
        ("0062a1b2c3d4e5f602", "0062A1B2C3D4E5F601", True),  # case does not matter
        ("0062a1b2c3d4e5f601", "0062A1B2C3D4E5F601", None),  # equal whatever the case
        (LOCALSTACK, LOCALSTACK, None),
        ("Happy Sequencer", "0A", None),
        ("0A", "Happy Sequencer", None),
    ],
)
def test_sequencers_order_only_when_both_are_hex_and_differ(
    a: str, b: str, later: bool | None
) -> None:
    assert later_sequencer(a, b) is later


@pytest.mark.parametrize(
    ("sequencer", "other", "later"),
    [("B", "0A", True), ("0A", "B", False), ("0B", "A", False), ("A", "0B", True)],
)
def test_sequencers_are_right_padded_with_zeros_not_spaces(
    sequencer: str, other: str, later: bool
) -> None:
    assert later_sequencer(sequencer, other) is later


def v(
    version_id: str | None = None, etag: str | None = "e1", sequencer: str | None = None
) -> Version:
    return Version(version_id, etag, sequencer)


@pytest.mark.parametrize(
    ("event", "stored", "expected"),
    [
        # No result yet: a real sequencer lets the named version be read; otherwise the current.
        (v(sequencer="0A"), None, Plan.LATER),
        (v(sequencer=None), None, Plan.UNORDERED),
        (v(sequencer="Happy Sequencer"), None, Plan.UNORDERED),
        # A duplicate is the same source version, whatever the sequencers say.
        (v("v1", "e1", "0A"), v("v1", "e9", "0B"), Plan.DUPLICATE),
        (v(None, "e1", LOCALSTACK), v(None, "e1", LOCALSTACK), Plan.DUPLICATE),
        (v(None, "e1", None), v(None, "e1", "0A"), Plan.DUPLICATE),
        # Real, different sequencers order the two events.
        (v(None, "e2", "0B"), v(None, "e1", "0A"), Plan.LATER),
        (v(None, "e1", "0A"), v(None, "e2", "0B"), Plan.STALE),
        (v("v2", "e2", "0b"), v("v1", "e1", "0A"), Plan.LATER),
        # Equal (LocalStack), meaningless or missing sequencers: the current object decides.
        (v("v2", "e2", LOCALSTACK), v("v1", "e1", LOCALSTACK), Plan.UNORDERED),
        (v(None, "e2", LOCALSTACK), v(None, "e1", LOCALSTACK), Plan.UNORDERED),
        (v(None, "e2", "Happy Sequencer"), v(None, "e1", "0A"), Plan.UNORDERED),
        (v(None, "e2", None), v(None, "e1", "0A"), Plan.UNORDERED),
        (v(None, "e2", "0A"), v(None, "e1", None), Plan.UNORDERED),
    ],
)
def test_plan(event: Version, stored: Version | None, expected: Plan) -> None:
    assert plan(event, stored) is expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (v("v1", "e1"), v("v1", "e2"), True),  # version ids decide where both have one
        (v("v1", "e1"), v("v2", "e1"), False),  # the same bytes uploaded twice: two versions
        (v(None, "e1"), v(None, "e1"), True),
        (v(None, "e1"), v(None, "e2"), False),
        (v("v1", "e1"), v(None, "e1"), True),  # a listing names no version: the ETag decides
        (v("v1", "e1"), v(None, "e2"), False),
        (v(None, None), v(None, None), False),  # nothing to compare: never a duplicate
    ],
)
def test_same_version_is_by_version_id_else_etag(a: Version, b: Version, same: bool) -> None:
    assert a.same_as(b) is same
    assert b.same_as(a) is same
