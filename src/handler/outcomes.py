"""What became of one object event: its status, the reason a record was skipped, and the
``Outcome`` that the handler's summary, the logs and the metrics are made from.

Statuses and reasons are enums that are also strings: the summary, the logs and Batch
Operations' ``resultString`` carry their codes (``"skipped"``, ``"ResultUpToDate"``) exactly as
before, and each reason carries its meaning, so the README and ``docs/behaviour.md`` explain the
same codes a user sees, and ``make run`` prints the meaning beside the code.

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What a record came to."""

    #: The total was written.
    OK = "ok"
    #: The document can never be totalled: an ``invalid`` result says why.
    INVALID = "invalid"
    #: S3 will not serve the object as it is (archived, SSE-C): an ``unreadable`` result.
    UNREADABLE = "unreadable"
    #: Nothing to do (``Reason`` says why).
    SKIPPED = "skipped"
    #: The input is gone, and so is its result.
    WITHDRAWN = "withdrawn"


class Reason(StrEnum):
    """Why a record was skipped. Each member's ``meaning`` is what the code stands for."""

    meaning: str

    def __new__(cls, code: str, meaning: str) -> Reason:
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    # Events the function never acts on.
    NOT_OBJECT_CREATED = (
        "NotObjectCreated",
        "the event is neither an object creation nor a deletion (a restore, a transition, ...)",
    )
    NOT_AN_INPUT_KEY = (
        "NotAnInputKey",
        "the key does not end with INPUT_SUFFIX, so it is not an input",
    )
    # Creations that change nothing.
    RESULT_UP_TO_DATE = (
        "ResultUpToDate",
        "the result already comes from this version of the object, or a later one",
    )
    SOURCE_DELETED = (
        "SourceDeleted",
        "the object (or the version the event names) no longer exists",
    )
    SOURCE_CHANGED = (
        "SourceChanged",
        "the key holds a newer object than the event names (its ETag or version id no longer "
        "matches); that upload's own event totals it",
    )
    # Deletions that change nothing.
    NO_RESULT_TO_WITHDRAW = (
        "NoResultToWithdraw",
        "the key has no current object and no result of it exists: nothing to withdraw",
    )
    DELETION_IS_LATE = (
        "DeletionIsLate",
        "the result comes from an event later than this deletion (by sequencer)",
    )
    KEY_HAS_CURRENT_OBJECT = (
        "KeyHasCurrentObject",
        "the key still has a current object and the result already reflects it (a late "
        "deletion, or a noncurrent version deleted)",
    )
    # Events the deployment does not act on (``rules.scope``), whatever their kind.
    NOT_OWN_BUCKET = (
        "NotOwnBucket",
        "the event names a bucket that is not this deployment's (SOURCE_BUCKETS, RESULT_BUCKET)",
    )
    NOT_A_BUCKET_NAME = (
        "NotABucketName",
        "the event names something that is not a bucket name (an ARN, an access point alias, "
        "a path)",
    )
    KEY_TOO_LONG = (
        "KeyTooLong",
        "the key is longer than the 1024 bytes S3 allows: no object can have it",
    )

    @classmethod
    def of(cls, code: str) -> Reason | None:
        """The reason whose code is ``code`` (as a summary carries it), or ``None``."""
        return next((reason for reason in cls if reason.value == code), None)

    @property
    def is_refusal(self) -> bool:
        """Whether the event was not this deployment's to act on (counted as
        ``RecordsRefused``, and a Batch Operations ``PermanentFailure``)."""
        return self in _REFUSALS


_REFUSALS = frozenset({Reason.NOT_OWN_BUCKET, Reason.NOT_A_BUCKET_NAME, Reason.KEY_TOO_LONG})


@dataclass
class Outcome:
    """What became of one object event: the handler's summary entry, plus what metrics need."""

    bucket: str
    key: str
    status: Status
    reason: Reason | None = None
    result_key: str | None = None
    product_count: int = 0
    bytes_read: int = 0
    error_code: str | None = None

    @classmethod
    def skipped(cls, bucket: str, key: str, reason: Reason) -> Outcome:
        return cls(bucket, key, Status.SKIPPED, reason=reason)

    def summary(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status.value,
        }
        if self.reason is not None:
            entry["reason"] = self.reason.value
        if self.result_key is not None:
            entry["result_key"] = self.result_key
        return entry
