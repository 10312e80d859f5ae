"""Settings read from the environment, each with a default (docs/behaviour.md, "Settings").

Settings are read on every invocation rather than at import time: it is cheap, and it means a
changed environment (a test's ``monkeypatch``, ``sam local invoke --env-vars``) always applies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from handler.rules.scope import bucket_name_problem
from handler.totals import DEFAULT_MAX_VALUE_BYTES, MIN_MAX_VALUE_BYTES

DEFAULT_INPUT_SUFFIX = "market_infos.json"
DEFAULT_RESULT_NAME = "total_price.json"
DEFAULT_MAX_INPUT_BYTES = 1024**3  # 1 GiB
MiB = 1024**2
#: Objects of at least this size are read with parallel ranged GETs (``handler.ranged``): below it
#: one GET stream keeps up with the parser and costs one request; above it, it cannot.
DEFAULT_PARALLEL_READ_BYTES = 64 * MiB
#: Each ranged GET: large enough that S3's time to first byte and the per-request charge are
#: small against it, small enough that ``concurrency`` of them fit in a 128 MB function.
DEFAULT_PARALLEL_READ_PART_BYTES = 8 * MiB
#: GETs in flight: at 40-100 MB/s per S3 stream, enough to keep a full vCPU's parser fed (5 fed
#: it better than 4 or 6 through the S3-like network); about this many parts are held in memory
#: at most, so a 1 GB object peaks near 95 MB of RSS (docs/benchmarks.md).
DEFAULT_PARALLEL_READ_CONCURRENCY = 5
#: Bounds of the parallel read's settings: smaller parts would multiply requests, more of them
#: in flight would only multiply memory.
MIN_PARALLEL_READ_PART_BYTES = 1 * MiB
MAX_PARALLEL_READ_CONCURRENCY = 64


_ACCOUNT_ID = re.compile(r"[0-9]{12}")


class ConfigurationError(ValueError):
    """A setting has a value the function cannot work with.

    Raised (not answered with an ``invalid`` result) because it is the deployment that is wrong,
    not the input: the event must be retried once the configuration is fixed.
    """


@dataclass(frozen=True)
class ParallelRead:
    """When and how a large object is read with parallel ranged GETs (``handler.ranged``).

    ``concurrency`` 1 turns it off: every object is read with one GET stream.
    """

    min_bytes: int = DEFAULT_PARALLEL_READ_BYTES
    part_bytes: int = DEFAULT_PARALLEL_READ_PART_BYTES
    concurrency: int = DEFAULT_PARALLEL_READ_CONCURRENCY

    def applies(self, size: int) -> bool:
        """Whether an object of ``size`` bytes is read in parallel parts."""
        return self.concurrency > 1 and size >= self.min_bytes


@dataclass(frozen=True)
class Settings:
    """The function's configuration. ``result_bucket`` ``None`` means "the source bucket"."""

    result_bucket: str | None = None
    input_suffix: str = DEFAULT_INPUT_SUFFIX
    result_name: str = DEFAULT_RESULT_NAME
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    #: A single value (string, key, number) longer than this is answered ``InvalidSchema``.
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    parallel_read: ParallelRead = ParallelRead()
    #: The buckets the deployment acts on (``SOURCE_BUCKETS``); ``None``: any bucket.
    source_buckets: frozenset[str] | None = None
    #: The account that owns them (``EXPECTED_BUCKET_OWNER``): sent as ``ExpectedBucketOwner``
    #: with every S3 request; ``None``: no such header.
    expected_bucket_owner: str | None = None
    #: Where an SQS message that claims to be S3 work but is malformed is kept for an operator
    #: (``MALFORMED_QUEUE_URL``, the input queue's DLQ); ``None``: reported as a batch item
    #: failure, and the queue's redrive policy moves it.
    malformed_queue_url: str | None = None

    def __post_init__(self) -> None:
        if not self.input_suffix:
            raise ConfigurationError("INPUT_SUFFIX must not be empty")
        if not self.result_name or "/" in self.result_name:
            raise ConfigurationError("RESULT_NAME must be a non-empty name without '/'")
        # A result that matched the trigger would invoke the function again, forever.
        if self.result_name.endswith(self.input_suffix):
            raise ConfigurationError(
                f"RESULT_NAME {self.result_name!r} ends with INPUT_SUFFIX "
                f"{self.input_suffix!r}: results would trigger the function in a loop"
            )
        if self.max_input_bytes < 0:
            raise ConfigurationError("MAX_INPUT_BYTES must be zero or more")
        if self.max_value_bytes < MIN_MAX_VALUE_BYTES:
            raise ConfigurationError(
                f"MAX_VALUE_BYTES must be at least {MIN_MAX_VALUE_BYTES} (1 KiB)"
            )
        parallel = self.parallel_read
        if parallel.part_bytes < MIN_PARALLEL_READ_PART_BYTES:
            raise ConfigurationError(
                f"PARALLEL_READ_PART_BYTES must be at least {MIN_PARALLEL_READ_PART_BYTES} (1 MiB)"
            )
        if not 1 <= parallel.concurrency <= MAX_PARALLEL_READ_CONCURRENCY:
            raise ConfigurationError(
                f"PARALLEL_READ_CONCURRENCY must be from 1 (off) to {MAX_PARALLEL_READ_CONCURRENCY}"
            )
        for bucket in sorted(self.source_buckets or ()):
            if problem := bucket_name_problem(bucket):
                raise ConfigurationError(f"SOURCE_BUCKETS names {bucket!r}: {problem}")
        owner = self.expected_bucket_owner
        if owner is not None and not _ACCOUNT_ID.fullmatch(owner):
            raise ConfigurationError(
                f"EXPECTED_BUCKET_OWNER must be a 12-digit AWS account id, got {owner!r}"
            )
        # Fewer than two parts would be one GET stream with an extra request.
        if parallel.min_bytes < 2 * parallel.part_bytes:
            raise ConfigurationError(
                "PARALLEL_READ_BYTES must be at least twice PARALLEL_READ_PART_BYTES"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); unset or empty means the default."""
        env = os.environ if environ is None else environ
        raw_max = env.get("MAX_INPUT_BYTES") or str(DEFAULT_MAX_INPUT_BYTES)
        try:
            max_input_bytes = int(raw_max)
        except ValueError:
            raise ConfigurationError(
                f"MAX_INPUT_BYTES must be a whole number of bytes, got {raw_max!r}"
            ) from None
        parallel = ParallelRead(
            min_bytes=_whole(
                "PARALLEL_READ_BYTES", env.get("PARALLEL_READ_BYTES"), DEFAULT_PARALLEL_READ_BYTES
            ),
            part_bytes=_whole(
                "PARALLEL_READ_PART_BYTES",
                env.get("PARALLEL_READ_PART_BYTES"),
                DEFAULT_PARALLEL_READ_PART_BYTES,
            ),
            concurrency=_whole(
                "PARALLEL_READ_CONCURRENCY",
                env.get("PARALLEL_READ_CONCURRENCY"),
                DEFAULT_PARALLEL_READ_CONCURRENCY,
            ),
        )
        return cls(
            result_bucket=env.get("RESULT_BUCKET") or None,
            input_suffix=env.get("INPUT_SUFFIX") or DEFAULT_INPUT_SUFFIX,
            result_name=env.get("RESULT_NAME") or DEFAULT_RESULT_NAME,
            max_input_bytes=max_input_bytes,
            max_value_bytes=_whole(
                "MAX_VALUE_BYTES", env.get("MAX_VALUE_BYTES"), DEFAULT_MAX_VALUE_BYTES
            ),
            parallel_read=parallel,
            source_buckets=bucket_list(env.get("SOURCE_BUCKETS")),
            expected_bucket_owner=env.get("EXPECTED_BUCKET_OWNER") or None,
            malformed_queue_url=env.get("MALFORMED_QUEUE_URL") or None,
        )

    def is_input(self, key: str) -> bool:
        """Whether ``key`` is an input: it ends with ``INPUT_SUFFIX``, as the trigger's suffix
        filter selects. The one place this is decided: the handler, ``make run`` and the
        backfill all ask here."""
        return key.endswith(self.input_suffix)

    def result_target(self, bucket: str, key: str) -> tuple[str, str]:
        """Where the result of the input ``bucket``/``key`` goes: ``RESULT_BUCKET`` (else the
        input's bucket), at the input's key with its last path segment replaced by
        ``RESULT_NAME``: ``a/b/market_infos.json`` -> ``a/b/total_price.json``."""
        folder, slash, _ = key.rpartition("/")
        return (self.result_bucket or bucket, f"{folder}{slash}{self.result_name}")

    def is_result(self, key: str) -> bool:
        """Whether ``key`` is where the results of its folder's inputs go (``RESULT_NAME``)."""
        return key.rpartition("/")[2] == self.result_name

    def owns(self, bucket: str) -> bool:
        """Whether ``bucket`` is one the deployment acts on: any where ``SOURCE_BUCKETS`` is
        unset, else those it names and ``RESULT_BUCKET`` (where results go is the
        deployment's own too)."""
        if self.source_buckets is None:
            return True
        return bucket in self.source_buckets or bucket == self.result_bucket


def bucket_list(raw: str | None) -> frozenset[str] | None:
    """``SOURCE_BUCKETS``: comma-separated names, spaces around them ignored; unset, empty or
    only commas means ``None`` (any bucket)."""
    names = frozenset(name.strip() for name in (raw or "").split(",") if name.strip())
    return names or None


def _whole(name: str, raw: str | None, default: int) -> int:
    """The setting ``name`` as a whole number; unset or empty means ``default``."""
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
