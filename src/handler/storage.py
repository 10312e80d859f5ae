"""All S3 access of the function: read the source version, read and write the result.

Every call takes the client as an argument: the handler makes a fresh one per invocation (never
at import), so moto's mocks, ``AWS_ENDPOINT_URL_S3`` and profiles always apply.

The ordering rules of CONTRACT.md live here as conditional requests: the source is read with
``VersionId`` (or ``If-Match`` on the event's ETag), and the result is written with ``If-Match`` on
the ETag of the result we compared against, or ``If-None-Match: *`` where there was none, so that of
two concurrent writers the one that compared against stale state fails with 412 and looks again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef, PutObjectRequestTypeDef

#: User metadata stored with each result (S3 sends it as ``x-amz-meta-*``), so the ordering check
#: needs a HEAD, not a GET of the result body.
#: The source key is stored as a digest: metadata must be ASCII and small, keys need neither be.
SEQUENCER_META: Final = "source-sequencer"
SOURCE_KEY_META: Final = "source-key-sha256"

#: botocore's "standard" retry mode retries throttling (SlowDown), 5xx and connection errors with
#: backoff. Three attempts and short timeouts keep one slow call well inside the function's
#: timeout; beyond them the error is raised and Lambda retries the whole event (CONTRACT.md,
#: "Failures"). The read timeout bounds each socket read while streaming, not the whole body.
CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=5,
    read_timeout=20,
)

# Error codes meaning "that object or version is not there (any more)".
_GONE: Final = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
# Error codes meaning "a condition did not hold": 412, or 409 when S3 saw two conditional
# writes to one key race.
_CONFLICT: Final = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class SourceGone(Exception):
    """The version the event names can no longer be read: deleted, or (unversioned bucket)
    overwritten since. A newer event covers whatever replaced it, so the record is skipped."""


class ResultConflict(Exception):
    """The result changed between our check and our write: check again."""


@dataclass(frozen=True)
class StoredResult:
    """What the ordering check needs to know of the result that is there now."""

    etag: str
    sequencer: str | None
    source_digest: str | None

    def is_from(self, source_key: str) -> bool:
        """Whether this result was computed from ``source_key`` (sequencers of different keys
        cannot be compared)."""
        return self.source_digest == key_digest(source_key)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class SourceObject:
    """An opened source version: its metadata, and its body not yet read."""

    response: GetObjectOutputTypeDef

    @property
    def size(self) -> int:
        return self.response["ContentLength"]

    @property
    def etag(self) -> str:
        return self.response["ETag"].strip('"')

    @property
    def version_id(self) -> str | None:
        # Unversioned buckets answer "null" (or nothing); the contract says JSON null.
        version = self.response.get("VersionId")
        return None if version in (None, "null") else version

    def close(self) -> None:
        self.response["Body"].close()


def new_client() -> S3Client:
    """A fresh client, made inside the handler's call path on every invocation, with no explicit
    credentials or endpoint so that the environment (moto, ``AWS_ENDPOINT_URL_S3``) decides."""
    return boto3.client("s3", config=CLIENT_CONFIG)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def open_source(
    client: S3Client, bucket: str, key: str, version_id: str | None, etag: str | None
) -> SourceObject:
    """Open exactly the version the event names, without reading its body.

    Raises ``SourceGone`` where that version can no longer be read; any other error propagates.
    """
    try:
        if version_id:
            response = client.get_object(Bucket=bucket, Key=key, VersionId=version_id)
        elif etag:
            response = client.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
        else:  # a hand-made event naming no version: read what is there
            response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in _GONE or _code(error) in _CONFLICT:
            raise SourceGone(_code(error)) from None
        raise
    return SourceObject(response)


def stored_result(client: S3Client, bucket: str, key: str) -> StoredResult | None:
    """The result that is there now, or ``None``."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in _GONE:
            return None
        raise
    metadata = head.get("Metadata", {})
    return StoredResult(
        etag=head["ETag"],
        sequencer=metadata.get(SEQUENCER_META),
        source_digest=metadata.get(SOURCE_KEY_META),
    )


def write_result(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytes,
    *,
    sequencer: str | None,
    source_key: str,
    replaces: StoredResult | None,
    conditional: bool = True,
) -> None:
    """Write a result object.

    With ``conditional`` the write succeeds only if the result is still ``replaces`` (``None``:
    still absent); otherwise it raises ``ResultConflict``. Without it the result is replaced
    whatever is there (events that carry no sequencer have nothing to order by).
    """
    metadata = {SOURCE_KEY_META: key_digest(source_key)}
    if sequencer is not None:
        metadata[SEQUENCER_META] = sequencer
    request: PutObjectRequestTypeDef = {
        "Bucket": bucket,
        "Key": key,
        "Body": body,
        "ContentType": "application/json",
        "Metadata": metadata,
    }
    if conditional and replaces is None:
        request["IfNoneMatch"] = "*"
    elif conditional and replaces is not None:
        request["IfMatch"] = replaces.etag
    try:
        client.put_object(**request)
    except ClientError as error:
        if _code(error) in _CONFLICT:
            raise ResultConflict(key) from None
        raise
