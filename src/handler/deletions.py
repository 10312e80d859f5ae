"""One deletion event, handled end to end: a result follows its input out of existence.

S3 tells of deletions (``ObjectRemoved:*``, ``LifecycleExpiration:*``, EventBridge's ``Object
Deleted``), and the promise that a result converges to the total of its key's current object
covers them (``docs/behaviour.md``, "Deletions"):

- the key has no current object (deleted, or a delete marker is current): the result is
  **withdrawn**, removed with ``If-Match`` on the ETag just seen, so a result written meanwhile
  for a newer upload is never removed;
- the key has a current object the result does not reflect (the current version was deleted
  and an older one is current again, or a newer upload's event has not come yet): that object
  is **totalled**, as a create event naming it would be;
- otherwise (a late deletion, a noncurrent version deleted) nothing changes.

Sequencers cannot be trusted on every emitter, so the key's state decides; a sequencer only
shortens the work where it proves the deletion late. A deletion is never retried for being out
of order: only a failure of S3 itself raises.

Why the result is looked at before the key: a newer upload's result can only be written after
that upload, so if the key is seen without a current object *after* the result was read, the
result read cannot be a newer upload's, and the conditional removal fails for any written since.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from handler import storage
from handler.known_results import KNOWN
from handler.ordering import Version, later_sequencer
from handler.processing import (
    MAX_WRITE_ATTEMPTS,
    Outcome,
    answer_unreadable,
    compute_result,
    head_result,
    ignore_reason,
    known_location,
    write_in_order,
)
from handler.results import result_key
from handler.sources import ObjectEvent

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from handler.settings import Settings


def follow_deletion(client: S3Client, event: ObjectEvent, settings: Settings) -> Outcome:
    """Handle one deletion event; raise only for failures a retry may cure.

    Requests: a withdrawal costs 3 (HEAD of the result, HEAD of the key, conditional DELETE);
    a deletion that changed nothing 2 (1 where the sequencers prove it late); a promotion a
    fresh record's 3 (HEAD, GET, PUT) plus the HEAD of the key.
    """
    bucket, key = event.bucket, event.key

    def skipped(reason: str) -> Outcome:
        return Outcome(bucket, key, "skipped", reason=reason)

    if ignored := ignore_reason(event, settings):
        return skipped(ignored)
    target = (settings.result_bucket or bucket, result_key(key, settings.result_name))
    for _ in range(MAX_WRITE_ATTEMPTS):
        stored = head_result(client, target)  # first: see the module's docstring
        mine = stored.source_of(key) if stored is not None else None
        if mine is not None and _is_late(event.version, mine):
            return skipped("DeletionIsLate")
        current = storage.current_version(client, bucket, key)
        if current is None:
            if stored is None or mine is None:
                # Nothing of this key's to withdraw (none, or another input's of its folder).
                return skipped("NoResultToWithdraw")
            try:
                return _withdraw(client, event, stored, target, settings)
            except storage.ResultConflict:
                continue  # the result changed since it was read: look again
        if mine is not None and current.same_as(mine):
            return skipped("KeyHasCurrentObject")
        return _promote(
            client, event, current=current, stored=stored, target=target, settings=settings
        )
    raise storage.ResultConflict(f"{target[1]} changed on each of {MAX_WRITE_ATTEMPTS} looks")


def _withdraw(
    client: S3Client,
    event: ObjectEvent,
    stored: storage.StoredResult,
    target: tuple[str, str],
    settings: Settings,
) -> Outcome:
    """Remove the result if it is still ``stored``. Where the store could not make the removal
    conditional, the key is looked at once more: if it has an object again, a result of that
    upload may have been removed too, so the object is totalled."""
    atomic = storage.withdraw_result(client, *target, replaces=stored)
    KNOWN.remember(known_location(client, target), None)
    if not atomic and (current := storage.current_version(client, event.bucket, event.key)):
        return _promote(
            client, event, current=current, stored=None, target=target, settings=settings
        )
    return Outcome(event.bucket, event.key, "withdrawn", result_key=target[1])


def _is_late(deletion: Version, result: Version) -> bool:
    """Whether the result comes from an event later than the deletion: then the key's state at
    that later event already includes the deletion."""
    if not (deletion.sequencer and result.sequencer):
        return False
    return later_sequencer(result.sequencer, deletion.sequencer) is True


def _promote(
    client: S3Client,
    event: ObjectEvent,
    *,
    current: Version,
    stored: storage.StoredResult | None,
    target: tuple[str, str],
    settings: Settings,
) -> Outcome:
    """Total the key's current object, which the result does not reflect, exactly as a create
    event naming it would. The result stores the deletion's sequencer: a late create event of
    the version that was removed (an earlier sequencer) is then stale, not read again."""
    bucket, key = event.bucket, event.key
    try:
        source = storage.open_source(
            client,
            bucket,
            key,
            current.version_id,
            current.etag,
            current=True,
            parallel=settings.parallel_read,
        )
    except storage.SourceGone as gone:
        # Changed again since the HEAD: that change's own event covers it.
        return Outcome(bucket, key, "skipped", reason=gone.reason)
    except storage.SourceUnreadable as unreadable:
        # The result names the version promoted, with the deletion's sequencer (as below).
        promoted = replace(event, version=replace(current, sequencer=event.version.sequencer))
        return answer_unreadable(client, promoted, unreadable, target, stored)
    read = Version(source.version_id, source.etag, event.version.sequencer)
    outcome, body = compute_result(
        source, read, bucket=bucket, key=key, out_key=target[1], settings=settings
    )
    lost_to = write_in_order(client, target, body, (bucket, key, read), stored)
    return outcome if lost_to is None else Outcome(bucket, key, "skipped", reason=lost_to)


def withdraw_orphan(client: S3Client, bucket: str, out_key: str, settings: Settings) -> Outcome:
    """A backfill's reconciliation: remove the result at ``out_key`` (in ``bucket``, where
    results sit beside their inputs) if the input it was computed from has no current object,
    conditionally, as a deletion event would. The result is read first (it names its input),
    then the input is looked at: 3 requests for an orphan, 2 where the input exists after all.
    """
    target = (bucket, out_key)
    found = storage.read_result_source(client, *target)
    if found is None or result_key(found[1], settings.result_name) != out_key:
        return Outcome(bucket, out_key, "skipped", reason="NoResultToWithdraw")
    stored, key = found
    if storage.current_version(client, bucket, key) is not None:
        return Outcome(bucket, key, "skipped", reason="KeyHasCurrentObject")
    orphan = ObjectEvent(bucket, key, Version(None, None, None), created=False, deleted=True)
    try:
        return _withdraw(client, orphan, stored, target, settings)
    except storage.ResultConflict:
        # Rewritten since it was read: by a newer upload of its input, which stands.
        return Outcome(bucket, key, "skipped", reason="ResultUpToDate")
