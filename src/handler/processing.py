"""One object event, handled end to end: the ordering rules, the read, the total, the write.

Shared by every entry point (the Lambda handler for each event shape, and the local backfill), so
that there is one place where an event becomes a result. The pure parts live elsewhere: the total
in ``totals``, the result documents in ``results``, the ordering rules in ``ordering``; S3 access
in ``storage``. This module only sequences them.

Failures a retry may cure (throttling, 5xx, timeouts, access denied) propagate; input that can
never succeed is answered with an ``invalid`` result; events with nothing to do are ``skipped``
with a reason (``REASONS``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from handler import scope, storage
from handler.known_results import KNOWN, UNKNOWN, Unknown, Where
from handler.ordering import Plan, Version, is_real_sequencer, plan
from handler.results import (
    SourceInfo,
    invalid_document,
    ok_document,
    unreadable_document,
    utc_timestamp,
)
from handler.sources import ObjectEvent
from handler.totals import InvalidDocument, too_large, total_prices

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from handler.settings import Settings

#: How often a write is tried again after another invocation changed the result in between.
#: Each conflict means someone else made progress, so a handful is plenty.
MAX_WRITE_ATTEMPTS: Final = 5

#: Names the hook by which ``_head_with_get`` learns that its HEAD has left.
_HEAD_SENT: Final = "market-totals-head-sent"

#: The plans that may stop a record (a duplicate; a stale event, once its GET confirms it): a
#: result this container remembers is never trusted for them, a HEAD asks S3.
STOPS: Final = frozenset({Plan.DUPLICATE, Plan.STALE})

#: Every skip reason, with what it means: logs and the handler's summary carry the code, the
#: README and ``docs/behaviour.md`` the meaning.
REASONS: Final = {
    "NotObjectCreated": (
        "the event is neither an object creation nor a deletion (a restore, a transition, ...)"
    ),
    "NotAnInputKey": "the key does not end with INPUT_SUFFIX, so it is not an input",
    "ResultUpToDate": "the result already comes from this version of the object, or a later one",
    storage.SOURCE_DELETED: "the object (or the version the event names) no longer exists",
    storage.SOURCE_CHANGED: (
        "the key holds a newer object than the event names (its ETag or version id no longer "
        "matches); that upload's own event totals it"
    ),
    # Deletions that change nothing (handler.deletions).
    "NoResultToWithdraw": (
        "the key has no current object and no result of it exists: nothing to withdraw"
    ),
    "DeletionIsLate": "the result comes from an event later than this deletion (by sequencer)",
    "KeyHasCurrentObject": (
        "the key still has a current object and the result already reflects it (a late "
        "deletion, or a noncurrent version deleted)"
    ),
    # Events the deployment does not act on (handler.scope), whatever their kind.
    scope.NOT_OWN_BUCKET: (
        "the event names a bucket that is not this deployment's (SOURCE_BUCKETS, RESULT_BUCKET)"
    ),
    scope.NOT_A_BUCKET_NAME: (
        "the event names something that is not a bucket name (an ARN, an access point alias, "
        "a path)"
    ),
    scope.KEY_TOO_LONG: "the key is longer than the 1024 bytes S3 allows: no object can have it",
}


class _Stopped(Exception):
    """The stored result, asked for beside the GET, stops the record: it already comes from
    this version of the object, or a later one."""

    reason: Final = "ResultUpToDate"


@dataclass
class Outcome:
    """What became of one object event: the handler's summary entry, plus what metrics need."""

    bucket: str
    key: str
    status: str  # "ok" | "invalid" | "unreadable" | "skipped" | "withdrawn"
    reason: str | None = None
    result_key: str | None = None
    product_count: int = 0
    bytes_read: int = 0
    error_code: str | None = None

    def summary(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "status": self.status}
        if self.reason is not None:
            entry["reason"] = self.reason
        if self.result_key is not None:
            entry["result_key"] = self.result_key
        return entry


def process(client: S3Client, event: ObjectEvent, settings: Settings) -> Outcome:
    """Handle one object event; raise for failures a retry may cure."""
    bucket, key = event.bucket, event.key

    def skipped(reason: str) -> Outcome:
        return Outcome(bucket, key, "skipped", reason=reason)

    if ignored := ignore_reason(event, settings):
        return skipped(ignored)

    out_bucket, out_key = settings.result_target(bucket, key)

    try:
        known = KNOWN.get(known_location(client, (out_bucket, out_key)))
        if known is UNKNOWN or _plan_ignores_result(event.version):
            # The result must be asked of S3, and it usually lets the record through: the GET
            # goes out beside the HEAD, and is closed unread where the HEAD stops the record.
            stored, source, current = _head_with_get(client, event, (out_bucket, out_key), settings)
        else:
            # What this container knows of the result: where it lets the record through, no
            # HEAD; where it would stop it, a HEAD alone, the GET waiting for its answer.
            stored = _stored_for(client, event.version, key, (out_bucket, out_key), known)
            decision = plan(event.version, stored.source_of(key) if stored else None)
            if decision is Plan.DUPLICATE:
                return skipped("ResultUpToDate")
            current = decision is not Plan.READ_NAMED
            source = _open_current(client, event, settings, confirming=decision)
    except (storage.SourceGone, _Stopped) as stop:
        return skipped(stop.reason)
    except storage.SourceUnreadable as unreadable:
        return answer_unreadable(client, event, unreadable, (out_bucket, out_key), settings)

    # The version actually read: what the result records, and what duplicates are matched on.
    read = Version(source.version_id, source.etag, event.version.sequencer)
    if current and stored is not None and (mine := stored.source_of(key)) and read.same_as(mine):
        source.close()  # the event named no version, and the result is already the current one
        return skipped("ResultUpToDate")

    outcome, body = compute_result(
        source, read, bucket=bucket, key=key, out_key=out_key, settings=settings
    )
    target = (out_bucket, out_key)
    written = write_in_order(client, target, body, (bucket, key, read), stored)
    return (
        skipped(written)
        if isinstance(written, str)
        else stand_or_settle(client, target, settings, outcome, (read, written))
    )


def ignore_reason(event: ObjectEvent, settings: Settings) -> str | None:
    """Why the function does nothing for ``event`` before any request, or ``None``: a bucket
    not its own or not a bucket name, a key S3 could not hold (``handler.scope``); an event
    neither a creation nor a deletion; a key that is not an input."""
    if refused := scope.refusal(event.bucket, event.key, owns=settings.owns(event.bucket)):
        return refused
    if not (event.created or event.deleted):
        return "NotObjectCreated"
    if not settings.is_input(event.key):
        return "NotAnInputKey"
    return None


def known_location(client: S3Client, target: tuple[str, str]) -> Where:
    """Where KNOWN files the result at ``target``: with the endpoint, as one process may talk
    to more than one S3."""
    return (client.meta.endpoint_url, *target)


def head_result(client: S3Client, target: tuple[str, str]) -> storage.StoredResult | None:
    """The stored result, asked of S3, and remembered."""
    stored = storage.stored_result(client, *target)
    KNOWN.remember(known_location(client, target), stored)
    return stored


def _stored_for(
    client: S3Client,
    event: Version,
    key: str,
    target: tuple[str, str],
    known: storage.StoredResult | None,
) -> storage.StoredResult | None:
    """The result to plan against: what this container remembers of it (``known``) where that
    lets the record through (the conditional write checks it is still there), else a HEAD. What
    is remembered never stops a record on its own (``handler.known_results``)."""
    if plan(event, known.source_of(key) if known else None) in STOPS:
        return head_result(client, target)
    return known


def _plan_ignores_result(event: Version) -> bool:
    """Whether ``plan`` reads the key's current object whatever result is stored: the event
    names no version id and no ETag (so it is never a duplicate before its GET) and no sequencer
    that orders (so it is never stale). S3 Batch Operations tasks are such events: their HEAD
    and GET overlap even where this container knows the result."""
    return not (event.version_id or event.etag or is_real_sequencer(event.sequencer))


def _head_with_get(
    client: S3Client, event: ObjectEvent, target: tuple[str, str], settings: Settings
) -> tuple[storage.StoredResult | None, storage.SourceObject, bool]:
    """The stored result (HEAD) and the source opened (GET), both in flight at once: the
    stored result, the source, and whether it is the key's current object. Raises ``_Stopped``
    where the stored result stops the record, once the GET is closed with its body unread.

    The GET is the one every create makes: the key's current object, checked against the
    version the event names (never a version behind a delete marker), so what the HEAD answers
    never changes which GET is needed. The HEAD is started first and decides, as if it had been
    sent alone first: its failure wins, and a duplicate or stale event is skipped whatever the
    GET met. ``SourceGone`` from the GET is raised only where the HEAD let it count."""
    sent = threading.Event()

    def head_sent(**_: object) -> None:
        sent.set()

    client.meta.events.register("before-call.s3.HeadObject", head_sent, unique_id=_HEAD_SENT)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            head = pool.submit(head_result, client, target)
            head.add_done_callback(lambda _: sent.set())  # also where it failed before sending
            sent.wait()
            try:
                source: storage.SourceObject | Exception = _open_current(client, event, settings)
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
        if decision is Plan.STALE and isinstance(source, storage.SourceGone):
            raise _Stopped from None  # confirmed: the event's version is no longer current
        raise source
    # A stale-looking event whose version is still the key's current object: the stored
    # result, whatever its sequencer says, does not reflect the key, so it is totalled.
    return stored, source, decision is not Plan.READ_NAMED


def _open_current(
    client: S3Client, event: ObjectEvent, settings: Settings, confirming: Plan | None = None
) -> storage.SourceObject:
    """The key's current object, and only if it is the version the event names: a version
    still readable by its id behind a delete marker is never totalled again (never
    resurrected; ``handler.deletions``).

    With ``confirming`` ``Plan.STALE`` (the stored result claims a later sequencer) this GET is
    the confirmation: where the event's version is no longer current, the record stops as
    ``ResultUpToDate``; where it is, the stored result does not reflect the key, whatever its
    sequencer says, and the record goes on."""
    try:
        return storage.open_source(
            client,
            event.bucket,
            event.key,
            event.version.version_id,
            event.version.etag,
            current=True,
            parallel=settings.parallel_read,
        )
    except storage.SourceGone:
        if confirming is Plan.STALE:
            raise _Stopped from None
        raise


def compute_result(
    source: storage.SourceObject,
    read: Version,
    *,
    bucket: str,
    key: str,
    out_key: str,
    settings: Settings,
) -> tuple[Outcome, bytes]:
    """Stream the source through the core: the outcome and the result document to write."""
    outcome = Outcome(bucket, key, "ok", result_key=out_key)
    info = SourceInfo(bucket, key, read.version_id, source.etag, read.sequencer, source.size)
    try:
        if source.size > settings.max_input_bytes:
            raise too_large(source.size, settings.max_input_bytes)
        total = total_prices(source.body, max_value_bytes=settings.max_value_bytes)
        body = ok_document(total, info, utc_timestamp())
        outcome.product_count = total.product_count
        outcome.bytes_read = source.size
    except InvalidDocument as error:
        body = invalid_document(error, info, utc_timestamp())
        outcome.status = "invalid"
        outcome.error_code = error.code
    finally:
        source.close()
    return outcome, body


def answer_unreadable(
    client: S3Client,
    event: ObjectEvent,
    unreadable: storage.SourceUnreadable,
    target: tuple[str, str],
    settings: Settings,
    *,
    stored: storage.StoredResult | Unknown | None = UNKNOWN,
) -> Outcome:
    """Write the ``unreadable`` result of an object S3 will not serve, in order like any other
    result, against ``stored`` (by default what the HEAD just before the GET remembered).

    The result names the version the event named, but records none for the ordering rules: it
    reflects no total of it, so the next event of that version (a restore's) totals it.
    """
    bucket, key = event.bucket, event.key
    if stored is UNKNOWN:
        stored = KNOWN.get(known_location(client, target))
    if stored is UNKNOWN:
        stored = head_result(client, target)
    named = event.version
    info = SourceInfo(bucket, key, named.version_id, named.etag, named.sequencer, None)
    body = unreadable_document(unreadable.code, unreadable.message, info, utc_timestamp())
    read = Version(None, None, named.sequencer)
    written = write_in_order(client, target, body, (bucket, key, read), stored)
    if isinstance(written, str):
        return Outcome(bucket, key, "skipped", reason=written)
    # The look after the write (``stand_or_settle``): the result names no version, so only a
    # key emptied meanwhile undoes it; another version's own event totals that one.
    if storage.current_version(client, bucket, key) is None:
        return settle(client, (bucket, key), target, settings, None, looked=(written, None))
    return Outcome(bucket, key, "unreadable", result_key=target[1], error_code=unreadable.code)


def write_in_order(
    client: S3Client,
    target: tuple[str, str],
    body: bytes,
    origin: tuple[str, str, Version],
    stored: storage.StoredResult | None,
) -> storage.StoredResult | str:
    """Write the result conditionally; on a conflict, look again and write again only if ours
    is still the one the ordering rules want. The result as written, else the skip reason of
    a result that must stand."""
    out_bucket, out_key = target
    bucket, key, read = origin
    for _ in range(MAX_WRITE_ATTEMPTS):
        try:
            written = storage.write_result(
                client, out_bucket, out_key, body, source_key=key, source=read, replaces=stored
            )
        except storage.ResultConflict:
            # Another invocation wrote in between (or what we remembered was out of date): is
            # the result there now from this version already, or is ours no longer current?
            stored = head_result(client, target)
            if plan(read, stored.source_of(key) if stored else None) is Plan.DUPLICATE:
                return "ResultUpToDate"
            if not storage.is_current(client, bucket, key, read):
                # Theirs may come from a newer object, or ours was withdrawn because the key was
                # deleted meanwhile: only the current object may be written. (A later sequencer
                # alone never wins over the key's current object.)
                return storage.SOURCE_CHANGED
        else:
            KNOWN.remember(known_location(client, target), written)
            return written
    raise storage.ResultConflict(f"{out_key} changed on each of {MAX_WRITE_ATTEMPTS} writes")


# --- after every write: the key decides (docs/behaviour.md, "Convergence") -------------------

#: What ``settle`` says where it changed nothing: the key has no current object and no result
#: of it exists, or the result already reflects the key's current object.
NOTHING_TO_WITHDRAW: Final = "NoResultToWithdraw"
REFLECTS_CURRENT: Final = "KeyHasCurrentObject"


def stand_or_settle(
    client: S3Client,
    target: tuple[str, str],
    settings: Settings,
    outcome: Outcome,
    wrote: tuple[Version, storage.StoredResult],
) -> Outcome:
    """The look after a write has landed: the result stands only if the key's current object
    is still the version it reflects; otherwise ``settle`` totals or withdraws what the key
    holds now. This look is each write's linearization point: it cannot be sent beside the
    PUT, since a HEAD answered before the PUT lands would miss a change made in between, whose
    event may already have read the result as it was before the PUT."""
    read, written = wrote
    source = (outcome.bucket, outcome.key)
    now = storage.current_version(client, *source)
    if now is not None and now.same_as(read):
        return outcome
    # What it totals instead is not the version the event named: its sequencer says nothing of
    # it, so none is stored (the next event of the key is then ordered by the key alone).
    settled = settle(client, source, target, settings, None, looked=(written, now))
    if settled.status == "skipped":  # someone else's result, or none, already fits the key
        reason = storage.SOURCE_DELETED if now is None else storage.SOURCE_CHANGED
        return Outcome(outcome.bucket, outcome.key, "skipped", reason=reason)
    return settled


def settle(
    client: S3Client,
    source: tuple[str, str],
    target: tuple[str, str],
    settings: Settings,
    sequencer: str | None,
    *,
    looked: tuple[storage.StoredResult | None, Version | None] | None = None,
) -> Outcome:
    """Make the result fit the key's current object: the one step a deletion runs, and a
    write runs when its look finds the key changed. ``looked``: the result and the key's
    current object as just seen (else both are asked for, the result first).

    No current object: the result of this key is withdrawn (``If-Match``); a current object
    the result does not reflect: it is totalled, over the result seen (conditionally);
    otherwise nothing. Every change is followed by another look at the key, and a conflict by
    a fresh look at both; bounded by ``MAX_WRITE_ATTEMPTS``, then raised (retried)."""
    bucket, key = source
    for _ in range(MAX_WRITE_ATTEMPTS):
        if looked is None:
            stored = head_result(client, target)  # first: see handler.deletions
            current = storage.current_version(client, bucket, key)
        else:
            (stored, current), looked = looked, None
        mine = stored.source_of(key) if stored is not None else None
        if current is None:
            if stored is None or mine is None:
                # Nothing of this key's to withdraw (none, or another input's of its folder).
                return Outcome(bucket, key, "skipped", reason=NOTHING_TO_WITHDRAW)
            try:
                storage.withdraw_result(client, *target, replaces=stored)
            except storage.ResultConflict:
                continue  # the result changed since it was read: look again
            KNOWN.remember(known_location(client, target), None)
            if (now := storage.current_version(client, bucket, key)) is None:
                return Outcome(bucket, key, "withdrawn", result_key=target[1])
            looked = (None, now)  # uploaded again meanwhile: total it
            continue
        if mine is not None and current.same_as(mine):
            return Outcome(bucket, key, "skipped", reason=REFLECTS_CURRENT)
        try:
            opened = storage.open_source(
                client,
                bucket,
                key,
                current.version_id,
                current.etag,
                current=True,
                parallel=settings.parallel_read,
            )
        except storage.SourceGone as gone:
            # Changed again since the look: that change's own event, handled after it, covers it.
            return Outcome(bucket, key, "skipped", reason=gone.reason)
        except storage.SourceUnreadable as unreadable:
            # The current object S3 will not serve (archived, SSE-C): answered, as a create is.
            named = ObjectEvent(bucket, key, Version(current.version_id, current.etag, sequencer))
            return answer_unreadable(client, named, unreadable, target, settings, stored=stored)
        read = Version(opened.version_id, opened.etag, sequencer)
        outcome, body = compute_result(
            opened, read, bucket=bucket, key=key, out_key=target[1], settings=settings
        )
        try:
            written = storage.write_result(
                client, *target, body, source_key=key, source=read, replaces=stored
            )
        except storage.ResultConflict:
            continue
        KNOWN.remember(known_location(client, target), written)
        now = storage.current_version(client, bucket, key)
        if now is not None and now.same_as(read):
            return outcome
        looked = (written, now)
    raise storage.ResultConflict(f"{target[1]} changed on each of {MAX_WRITE_ATTEMPTS} looks")
