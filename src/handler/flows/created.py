"""The created flow: an upload, a restore, or a Batch Operations task, handled end to end.

The ordering rules (``rules.ordering``) decide from the stored result whether the event is a
duplicate, stale, later or unordered; the key's current object is read only as the version the
event names; the total is written in order (``result_store``); and one look at the key after the
write decides whether it stands (``recompute.stand_or_settle``).

Failures a retry may cure (throttling, 5xx, timeouts, access denied) propagate; input that can
never succeed is answered with an ``invalid`` result; events with nothing to do are ``skipped``
with a ``Reason``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

from handler import result_store, storage
from handler.flows.recompute import answer_unreadable, compute_result, stand_or_settle
from handler.outcomes import Outcome, Reason
from handler.result_store import UNKNOWN, Target
from handler.rules.ordering import Plan, Version, is_real_sequencer, plan
from handler.rules.scope import ignore_reason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from handler.events import ObjectEvent
    from handler.rules.settings import Settings

#: Names the hook by which ``_head_with_get`` learns that its HEAD has left.
_HEAD_SENT: Final = "market-totals-head-sent"

#: The plans that may stop a record (a duplicate; a stale event, once its GET confirms it): a
#: result this container remembers is never trusted for them, a HEAD asks S3.
STOPS: Final = frozenset({Plan.DUPLICATE, Plan.STALE})


class _Stopped(Exception):
    """The stored result, asked for beside the GET, stops the record: it already comes from
    this version of the object, or a later one."""

    reason: Final = Reason.RESULT_UP_TO_DATE


def process(client: S3Client, event: ObjectEvent, settings: Settings) -> Outcome:
    """Handle one creation event; raise for failures a retry may cure."""
    bucket, key = event.bucket, event.key
    if ignored := ignore_reason(event, settings):
        return Outcome.skipped(bucket, key, ignored)
    target = settings.result_target(bucket, key)

    try:
        known = result_store.remembered(client, target)
        if known is UNKNOWN or _plan_ignores_result(event.version):
            # The result must be asked of S3, and it usually lets the record through: the GET
            # goes out beside the HEAD, and is closed unread where the HEAD stops the record.
            stored, source, recheck = _head_with_get(client, event, target, settings)
        else:
            # What this container knows of the result: where it lets the record through, no
            # HEAD; where it would stop it, a HEAD alone, the GET waiting for its answer.
            stored = _stored_for(client, event.version, key, target, known)
            decision = plan(event.version, stored.source_of(key) if stored else None)
            if decision is Plan.DUPLICATE:
                return Outcome.skipped(bucket, key, Reason.RESULT_UP_TO_DATE)
            recheck = decision is not Plan.LATER
            source = _open_current(client, event, settings, confirming=decision)
    except (storage.InputGone, _Stopped) as stop:
        return Outcome.skipped(bucket, key, stop.reason)
    except storage.InputUnreadable as unreadable:
        return answer_unreadable(client, event, unreadable, target, settings)

    # The version actually read: what the result records, and what duplicates are matched on.
    read = Version(source.version_id, source.etag, event.version.sequencer)
    if recheck and stored is not None and (mine := stored.source_of(key)) and read.same_as(mine):
        source.close()  # sequencers did not order it, and the result already reflects the read
        return Outcome.skipped(bucket, key, Reason.RESULT_UP_TO_DATE)

    outcome, body = compute_result(
        source, read, bucket=bucket, key=key, out_key=target[1], settings=settings
    )
    written = result_store.write_in_order(client, target, body, (bucket, key, read), stored)
    return (
        Outcome.skipped(bucket, key, written)
        if isinstance(written, Reason)
        else stand_or_settle(client, target, settings, outcome, (read, written))
    )


def _stored_for(
    client: S3Client,
    event: Version,
    key: str,
    target: Target,
    known: storage.StoredResult | None,
) -> storage.StoredResult | None:
    """The result to plan against: what this container remembers of it (``known``) where that
    lets the record through (the conditional write checks it is still there), else a HEAD. What
    is remembered never stops a record on its own (``handler.result_store``)."""
    if plan(event, known.source_of(key) if known else None) in STOPS:
        return result_store.look(client, target)
    return known


def _plan_ignores_result(event: Version) -> bool:
    """Whether ``plan`` reads the key's current object whatever result is stored: the event
    names no version id and no ETag (so it is never a duplicate before its GET) and no sequencer
    that orders (so it is never stale). S3 Batch Operations tasks are such events: their HEAD
    and GET overlap even where this container knows the result."""
    return not (event.version_id or event.etag or is_real_sequencer(event.sequencer))


def _head_with_get(
    client: S3Client, event: ObjectEvent, target: Target, settings: Settings
) -> tuple[storage.StoredResult | None, storage.InputObject, bool]:
    """The stored result (HEAD) and the input opened (GET), both in flight at once: the
    stored result, the input, and whether the read must still be checked against the stored
    result (every plan but ``Plan.LATER``). Raises ``_Stopped``
    where the stored result stops the record, once the GET is closed with its body unread.

    The GET is the one every create makes: the key's current object, checked against the
    version the event names (never a version behind a delete marker), so what the HEAD answers
    never changes which GET is needed. The HEAD is started first and decides, as if it had been
    sent alone first: its failure wins, and a duplicate or stale event is skipped whatever the
    GET met. ``InputGone`` from the GET is raised only where the HEAD let it count."""
    sent = threading.Event()

    def head_sent(**_: object) -> None:
        sent.set()

    client.meta.events.register("before-call.s3.HeadObject", head_sent, unique_id=_HEAD_SENT)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            head = pool.submit(result_store.look, client, target)
            head.add_done_callback(lambda _: sent.set())  # also where it failed before sending
            sent.wait()
            try:
                source: storage.InputObject | Exception = _open_current(client, event, settings)
            except Exception as error:  # noqa: BLE001 - what counts is decided by the HEAD
                source = error
            try:
                stored = head.result()
            except BaseException:
                if not isinstance(source, Exception):
                    source.close()
                raise
    finally:
        client.meta.events.unregister("before-call.s3.HeadObject", unique_id=_HEAD_SENT)
    decision = plan(event.version, stored.source_of(event.key) if stored else None)
    if decision is Plan.DUPLICATE:
        if not isinstance(source, Exception):
            source.close()
        raise _Stopped
    if isinstance(source, Exception):
        if decision is Plan.STALE and isinstance(source, storage.InputGone):
            raise _Stopped from None  # confirmed: the event's version is no longer current
        raise source
    # A stale-looking event whose version is still the key's current object: the stored
    # result, whatever its sequencer says, does not reflect the key, so it is totalled.
    return stored, source, decision is not Plan.LATER


def _open_current(
    client: S3Client, event: ObjectEvent, settings: Settings, confirming: Plan | None = None
) -> storage.InputObject:
    """The key's current object, and only if it is the version the event names: a version
    still readable by its id behind a delete marker is never totalled again (never
    resurrected; ``flows.deleted``).

    With ``confirming`` ``Plan.STALE`` (the stored result claims a later sequencer) this GET is
    the confirmation: where the event's version is no longer current, the record stops as
    ``ResultUpToDate``; where it is, the stored result does not reflect the key, whatever its
    sequencer says, and the record goes on."""
    try:
        return storage.open_input(
            client,
            event.bucket,
            event.key,
            event.version.version_id,
            event.version.etag,
            parallel=settings.parallel_read,
        )
    except storage.InputGone:
        if confirming is Plan.STALE:
            raise _Stopped from None
        raise
