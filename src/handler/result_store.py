"""The result store: the one owner of a result's conditional write, its withdrawal, and the
container's memory of results (``KNOWN``). The flows (``handler.flows``) ask it; they never
write a result, remove one, or touch the memory themselves. The requests are ``storage``'s.

Every write is conditional on the result the caller compared against (``If-Match`` on its ETag,
``If-None-Match: *`` where there was none), and every result seen or changed is remembered here,
between warm invocations, so that the HEAD of a result can be left out when it could not stop the
record.

Why: a fresh record costs a HEAD of the result, a GET of the source and a PUT of the result, one
after the other; the HEAD is the round trip that a plain GET-then-PUT function does not pay. When
a market's file is updated again and the event reaches a container that wrote (or read) that
result before, what it knows of the result is usually still true. If that knowledge lets the
record through (a later sequencer, or another version), the HEAD is left out: the write is
conditional on exactly the ETag remembered (``If-Match``, or ``If-None-Match: *`` where the result
was absent), so if anyone wrote in between, the PUT fails with 412 and the record looks again,
as it does after any conflicting write. Every result body carries the time it was computed, so
any write changes the ETag.

What is remembered is never trusted to *stop* a record: where it says "duplicate" or "stale",
the HEAD is made as before. A record that is let through on stale knowledge costs a wasted GET
and a failed PUT, never a wrong result.

The memory is per process and bounded (least recently used first out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from enum import Enum
from typing import TYPE_CHECKING, Final, TypeAlias

from handler import storage
from handler.outcomes import Reason
from handler.rules.ordering import Plan, Version, plan

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from handler.storage import StoredResult

#: How often a write is tried again after another invocation changed the result in between.
#: Each conflict means someone else made progress, so a handful is plenty.
MAX_WRITE_ATTEMPTS: Final = 5

#: Where a result is, as the flows name it: its bucket and key.
Target: TypeAlias = tuple[str, str]

#: Results remembered per container: a few hundred bytes each.
CAPACITY: Final = 1024

#: Where a result is: the S3 endpoint (one process may talk to more than one S3), bucket, key.
Where: TypeAlias = tuple[str, str, str]


class Unknown(Enum):
    """Nothing is remembered of that result (never seen, or forgotten)."""

    UNKNOWN = "unknown"


UNKNOWN: Final = Unknown.UNKNOWN


class KnownResults:
    """A bounded, thread-safe map of where a result is to what was last seen there: its
    ``StoredResult``, or ``None`` for "absent". SQS batches and the local backfill handle
    several records from several threads at once."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[Where, StoredResult | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, where: Where) -> StoredResult | Unknown | None:
        with self._lock:
            if where not in self._seen:
                return UNKNOWN
            self._seen.move_to_end(where)
            return self._seen[where]

    def remember(self, where: Where, stored: StoredResult | None) -> None:
        with self._lock:
            self._seen[where] = stored
            self._seen.move_to_end(where)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


#: The container's memory: module state survives between warm invocations, as Lambda keeps
#: the process. Each new process (a cold start, a test's fresh state) starts with none.
KNOWN: Final = KnownResults()


def _where(client: S3Client, target: Target) -> Where:
    """Where ``KNOWN`` files the result at ``target``: with the endpoint, as one process may
    talk to more than one S3."""
    return (client.meta.endpoint_url, *target)


def remembered(client: S3Client, target: Target) -> StoredResult | Unknown | None:
    """What this container last saw of the result at ``target`` (``UNKNOWN``: nothing). Never
    enough to stop a record on its own; a HEAD (``look``) confirms that."""
    return KNOWN.get(_where(client, target))


def look(client: S3Client, target: Target) -> StoredResult | None:
    """The result at ``target``, asked of S3 (a HEAD), and remembered."""
    stored = storage.stored_result(client, *target)
    KNOWN.remember(_where(client, target), stored)
    return stored


def write(
    client: S3Client,
    target: Target,
    body: bytes,
    *,
    origin: tuple[str, Version],
    replaces: StoredResult | None,
) -> StoredResult:
    """Write the result computed from ``origin`` (the input key and the version read) only if
    the result is still ``replaces`` (``None``: still absent); remembered. Raises
    ``storage.ResultConflict`` where it changed since."""
    key, read = origin
    written = storage.write_result(
        client, *target, body, source_key=key, source=read, replaces=replaces
    )
    KNOWN.remember(_where(client, target), written)
    return written


def write_in_order(
    client: S3Client,
    target: Target,
    body: bytes,
    origin: tuple[str, str, Version],
    stored: StoredResult | None,
) -> StoredResult | Reason:
    """Write the result conditionally; on a conflict, look again and write again only if ours
    is still the one the ordering rules want. The result as written, else the skip reason of
    a result that must stand."""
    bucket, key, read = origin
    for _ in range(MAX_WRITE_ATTEMPTS):
        try:
            return write(client, target, body, origin=(key, read), replaces=stored)
        except storage.ResultConflict:
            # Another invocation wrote in between (or what we remembered was out of date): is
            # the result there now from this version already, or is ours no longer current?
            stored = look(client, target)
            if plan(read, stored.source_of(key) if stored else None) is Plan.DUPLICATE:
                return Reason.RESULT_UP_TO_DATE
            if not storage.is_current(client, bucket, key, read):
                # Theirs may come from a newer object, or ours was withdrawn because the key was
                # deleted meanwhile: only the current object may be written. (A later sequencer
                # alone never wins over the key's current object.)
                return Reason.SOURCE_CHANGED
    raise storage.ResultConflict(f"{target[1]} changed on each of {MAX_WRITE_ATTEMPTS} writes")


def withdraw(client: S3Client, target: Target, *, replaces: StoredResult) -> None:
    """Remove the result at ``target`` only if it is still ``replaces``; remembered as absent.
    Raises ``storage.ResultConflict`` where it changed, or is already gone."""
    storage.withdraw_result(client, *target, replaces=replaces)
    KNOWN.remember(_where(client, target), None)


def named_input(client: S3Client, target: Target) -> tuple[StoredResult, str] | None:
    """The result at ``target`` and the input key its body names (one GET), or ``None`` where
    there is none or it is not one of ours: what a backfill reads of a result whose folder
    lists no input."""
    return storage.read_result_source(client, *target)
