"""The one step both flows share: the result made to fit its key's current object, and what it
takes to compute a result (the read streamed through ``handler.totals``) or answer an object S3
will not serve. ``docs/behaviour.md``, "Convergence", has the proof of why this converges.

A creation's write is followed by one look at the key (``stand_or_settle``); where the key has
changed meanwhile, ``settle`` totals or withdraws what the key holds now. A deletion is
``settle`` alone. So a result never goes backwards and follows its input out of existence,
whatever order the events of a key arrive in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from handler import result_store, storage
from handler.events import ObjectEvent
from handler.outcomes import Outcome, Reason, Status
from handler.result_store import UNKNOWN, Target, Unknown
from handler.rules.documents import (
    SourceInfo,
    invalid_document,
    ok_document,
    unreadable_document,
    utc_timestamp,
)
from handler.rules.ordering import Version
from handler.totals import InvalidDocument, too_large, total_prices

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from handler.rules.settings import Settings

#: How often ``settle`` looks at the key and the result again after one of them changed under
#: it. Each change means someone else made progress, so a handful is plenty.
MAX_LOOKS: Final = 5


def compute_result(
    source: storage.InputObject,
    read: Version,
    *,
    bucket: str,
    key: str,
    out_key: str,
    settings: Settings,
) -> tuple[Outcome, bytes]:
    """Stream the input through the core: the outcome and the result document to write."""
    outcome = Outcome(bucket, key, Status.OK, result_key=out_key)
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
        outcome.status = Status.INVALID
        outcome.error_code = error.code
    finally:
        source.close()
    return outcome, body


def answer_unreadable(
    client: S3Client,
    event: ObjectEvent,
    unreadable: storage.InputUnreadable,
    target: Target,
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
        stored = result_store.remembered(client, target)
    if stored is UNKNOWN:
        stored = result_store.look(client, target)
    named = event.version
    info = SourceInfo(bucket, key, named.version_id, named.etag, named.sequencer, None)
    body = unreadable_document(unreadable.code, unreadable.message, info, utc_timestamp())
    read = Version(None, None, named.sequencer)
    written = result_store.write_in_order(client, target, body, (bucket, key, read), stored)
    if isinstance(written, Reason):
        return Outcome.skipped(bucket, key, written)
    # The look after the write (``stand_or_settle``): the result names no version, so only a
    # key emptied meanwhile undoes it; another version's own event totals that one.
    if storage.current_version(client, bucket, key) is None:
        return settle(client, (bucket, key), target, settings, None, looked=(written, None))
    return Outcome(bucket, key, Status.UNREADABLE, result_key=target[1], error_code=unreadable.code)


def stand_or_settle(
    client: S3Client,
    target: Target,
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
    if settled.status is Status.SKIPPED:  # someone else's result, or none, already fits the key
        reason = Reason.SOURCE_DELETED if now is None else Reason.SOURCE_CHANGED
        return Outcome.skipped(outcome.bucket, outcome.key, reason)
    return settled


def settle(
    client: S3Client,
    source: tuple[str, str],
    target: Target,
    settings: Settings,
    sequencer: str | None,
    *,
    looked: tuple[storage.StoredResult | None, Version | None] | None = None,
) -> Outcome:
    """Make the result fit the key's current object: the one step a deletion runs, and a
    write runs when its look finds the key changed. ``looked``: the result and the key's
    current object as just seen (else both are asked for, the result first: see
    ``flows.deleted``).

    No current object: the result of this key is withdrawn (``If-Match``); a current object
    the result does not reflect: it is totalled, over the result seen (conditionally);
    otherwise nothing. Every change is followed by another look at the key, and a conflict by
    a fresh look at both; bounded by ``MAX_LOOKS``, then raised (retried)."""
    bucket, key = source
    for _ in range(MAX_LOOKS):
        if looked is None:
            stored = result_store.look(client, target)
            current = storage.current_version(client, bucket, key)
        else:
            (stored, current), looked = looked, None
        mine = stored.source_of(key) if stored is not None else None
        if current is None:
            if stored is None or mine is None:
                # Nothing of this key's to withdraw (none, or another input's of its folder).
                return Outcome.skipped(bucket, key, Reason.NO_RESULT_TO_WITHDRAW)
            try:
                result_store.withdraw(client, target, replaces=stored)
            except storage.ResultConflict:
                continue  # the result changed since it was read: look again
            if (now := storage.current_version(client, bucket, key)) is None:
                return Outcome(bucket, key, Status.WITHDRAWN, result_key=target[1])
            looked = (None, now)  # uploaded again meanwhile: total it
            continue
        if mine is not None and current.same_as(mine):
            return Outcome.skipped(bucket, key, Reason.KEY_HAS_CURRENT_OBJECT)
        try:
            opened = storage.open_input(
                client,
                bucket,
                key,
                current.version_id,
                current.etag,
                parallel=settings.parallel_read,
            )
        except storage.InputGone as gone:
            # Changed again since the look: that change's own event, handled after it, covers it.
            return Outcome.skipped(bucket, key, gone.reason)
        except storage.InputUnreadable as unreadable:
            # The current object S3 will not serve (archived, SSE-C): answered, as a create is.
            named = ObjectEvent(bucket, key, Version(current.version_id, current.etag, sequencer))
            return answer_unreadable(client, named, unreadable, target, settings, stored=stored)
        read = Version(opened.version_id, opened.etag, sequencer)
        outcome, body = compute_result(
            opened, read, bucket=bucket, key=key, out_key=target[1], settings=settings
        )
        try:
            written = result_store.write(client, target, body, origin=(key, read), replaces=stored)
        except storage.ResultConflict:
            continue
        now = storage.current_version(client, bucket, key)
        if now is not None and now.same_as(read):
            return outcome
        looked = (written, now)
    raise storage.ResultConflict(f"{target[1]} changed on each of {MAX_LOOKS} looks")
