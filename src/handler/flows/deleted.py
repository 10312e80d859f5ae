"""The deleted flow: one deletion event, handled end to end; a result follows its input out of
existence.

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
One exception: in an unversioned bucket the same bytes uploaded again have the same ETag, and
that upload's event takes the result read as its own (a duplicate). So a withdrawal, like every
write, is followed by one more look at the key; where it has an object again, it is totalled
(``recompute.settle``, the one step every write and every deletion shares; the proof is in
``docs/behaviour.md``, "Convergence").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handler import result_store, storage
from handler.flows.recompute import settle
from handler.outcomes import Outcome, Reason, Status
from handler.rules.ordering import Version, later_sequencer
from handler.rules.scope import ignore_reason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from handler.events import ObjectEvent
    from handler.rules.settings import Settings


def follow_deletion(client: S3Client, event: ObjectEvent, settings: Settings) -> Outcome:
    """Handle one deletion event; raise only for failures a retry may cure.

    Requests: a withdrawal costs 4 (HEAD of the result, HEAD of the key, conditional DELETE,
    HEAD of the key again); a deletion that changed nothing 2; a promotion 5 (HEAD of the
    result, HEAD of the key, GET, PUT, HEAD of the key again).
    """
    bucket, key = event.bucket, event.key
    if ignored := ignore_reason(event, settings):
        return Outcome.skipped(bucket, key, ignored)
    target = settings.result_target(bucket, key)
    stored = result_store.look(client, target)  # first: see the module's docstring
    current = storage.current_version(client, bucket, key)
    outcome = settle(
        client, (bucket, key), target, settings, event.version.sequencer, looked=(stored, current)
    )
    mine = stored.source_of(key) if stored is not None else None
    if (
        outcome.reason is Reason.KEY_HAS_CURRENT_OBJECT
        and mine is not None
        and _is_late(event.version, mine)
    ):
        outcome.reason = Reason.DELETION_IS_LATE
    return outcome


def _is_late(deletion: Version, result: Version) -> bool:
    """Whether the result comes from an event later than the deletion (by sequencer). Only the
    reason it names: the key's state has already confirmed that the result fits it."""
    if not (deletion.sequencer and result.sequencer):
        return False
    return later_sequencer(result.sequencer, deletion.sequencer) is True


def withdraw_orphan(client: S3Client, bucket: str, out_key: str, settings: Settings) -> Outcome:
    """A backfill's reconciliation (the repair of stores written by older versions of this
    function, which could leave a total for a deleted key): remove the result at ``out_key``
    (in ``bucket``, where results sit beside their inputs) if the input it was computed from
    has no current object, conditionally, as a deletion event would. The result is read first
    (it names its input), then the input is looked at: 4 requests for an orphan (the look
    after the removal included), 2 where the input exists after all.
    """
    target = (bucket, out_key)
    found = result_store.named_input(client, target)
    if found is None or settings.result_target(bucket, found[1]) != target:
        return Outcome.skipped(bucket, out_key, Reason.NO_RESULT_TO_WITHDRAW)
    stored, key = found
    if storage.current_version(client, bucket, key) is not None:
        return Outcome.skipped(bucket, key, Reason.KEY_HAS_CURRENT_OBJECT)
    try:
        result_store.withdraw(client, target, replaces=stored)
    except storage.ResultConflict:
        # Rewritten since it was read: by a newer upload of its input, which stands.
        return Outcome.skipped(bucket, key, Reason.RESULT_UP_TO_DATE)
    # As after every write, a look at the key: it may have an object again (settle totals it).
    if (now := storage.current_version(client, bucket, key)) is None:
        return Outcome(bucket, key, Status.WITHDRAWN, result_key=out_key)
    return settle(client, (bucket, key), target, settings, None, looked=(None, now))
