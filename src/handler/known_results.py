"""What this container last learned of each result it read or wrote, kept between warm
invocations, so that the HEAD of a result can be left out when it could not stop the record.

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

Nothing here does I/O. The memory is per process and bounded (least recently used first out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from enum import Enum
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from handler.storage import StoredResult

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
    ``StoredResult``, or ``None`` for "absent". SQS batches and the local backfill call
    ``processing.process`` from several threads at once."""

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
