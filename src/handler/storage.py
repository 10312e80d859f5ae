"""All S3 access of the function: read an input, look at a key, read, write and remove a result.

Every call takes the client as an argument: the handler makes a fresh one per invocation (never
at import), so moto's mocks, ``AWS_ENDPOINT_URL_S3`` and profiles always apply.

The ordering rules (``ordering``; ``docs/behaviour.md``, "Ordering") are carried out here as
conditional requests: an input is read as the key's current object, with ``If-Match`` on the
ETag the event names (and its version id checked against the one the event names), and the result
is written with ``If-Match`` on the ETag of the result we compared against, or
``If-None-Match: *`` where there was none, so that of two concurrent writers the one that compared
against stale state fails with 412 and looks again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from handler.outcomes import Reason
from handler.rules.ordering import Version, is_real_sequencer
from handler.rules.settings import MAX_PARALLEL_READ_CONCURRENCY

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef, PutObjectRequestTypeDef

    from handler.ranged import ParallelBody
    from handler.rules.settings import ParallelRead
    from handler.totals import BinaryReader

#: User metadata stored with each result (S3 sends it as ``x-amz-meta-*``), so the ordering check
#: needs a HEAD, not a GET of the result body.
#: The source key is stored as a digest: metadata must be ASCII and small, keys need neither be.
SEQUENCER_META: Final = "source-sequencer"
SOURCE_KEY_META: Final = "source-key-sha256"
VERSION_META: Final = "source-version-id"
ETAG_META: Final = "source-etag"

#: botocore's "standard" retry mode retries throttling (SlowDown), 5xx and connection errors with
#: backoff. Three attempts and short timeouts keep one slow call well inside the function's
#: timeout; beyond them the error is raised and Lambda retries the whole event (docs/behaviour.md,
#: "Failures"). The read timeout bounds each socket read while streaming, not the whole body.
CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=5,
    read_timeout=20,
    # A parallel read (handler.ranged) keeps up to PARALLEL_READ_CONCURRENCY connections busy;
    # the pool opens connections only as they are needed.
    max_pool_connections=MAX_PARALLEL_READ_CONCURRENCY,
)

# Error codes meaning "that object or version is not there (any more)".
_GONE: Final = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
# What a store answers for a request header it does not implement (LocalStack: If-Match on
# DeleteObject).
_NOT_IMPLEMENTED: Final = "NotImplemented"
# Error codes meaning "a condition did not hold": 412, or 409 when S3 saw two conditional
# writes to one key race.
_CONFLICT: Final = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class InputGone(Exception):
    """The version the event names can no longer be read. A newer event covers whatever replaced
    it, so the record is skipped. ``reason`` says why (``SOURCE_DELETED``: the object is gone;
    ``SOURCE_CHANGED``: the key holds another version now), for the handler's summary."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason = reason


class InputUnreadable(Exception):
    """S3 will not serve the object as it is, and asking again will not change that: the record
    is answered with an ``unreadable`` result saying why (``code``), at once, never retried.

    ``code`` is one of ``UNREADABLE``'s values; ``message`` is S3's own words.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


#: S3's permanent refusals of a GET, and the code an ``unreadable`` result gives each:
#: ``InvalidObjectState``: archived (GLACIER, DEEP_ARCHIVE, an Intelligent-Tiering archive tier)
#: and not restored; ``KeyTooLongError``: a key over 1024 bytes. A customer-key (SSE-C) object
#: answers ``InvalidRequest``, a code S3 also gives other malformed requests: ``_unreadable``
#: tells it by its message.
UNREADABLE: Final = {"InvalidObjectState": "ObjectArchived", "KeyTooLongError": "KeyRefused"}
CUSTOMER_KEY_ENCRYPTED: Final = "CustomerKeyEncrypted"


class ResultConflict(Exception):
    """The result changed between our check and our write: check again."""


@dataclass(frozen=True)
class StoredResult:
    """What the ordering check needs to know of the result that is there now."""

    etag: str
    sequencer: str | None
    source_digest: str | None
    version_id: str | None = None
    source_etag: str | None = None

    def is_from(self, source_key: str) -> bool:
        """Whether this result was computed from ``source_key`` (sequencers of different keys
        cannot be compared)."""
        return self.source_digest == key_digest(source_key)

    def source_of(self, source_key: str) -> Version | None:
        """The source version of this result if it was computed from ``source_key``."""
        if not self.is_from(source_key):
            return None
        return Version(self.version_id, self.source_etag, self.sequencer)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class InputObject:
    """An opened source version: its metadata, and its body not yet read.

    ``body`` is what the core reads: the response's own stream, or for a large object the same
    version read with parallel ranged GETs (``parallel``; the response's stream is then unused).
    """

    response: GetObjectOutputTypeDef
    parallel: ParallelBody | None = None

    @property
    def body(self) -> BinaryReader:
        return self.parallel if self.parallel is not None else self.response["Body"]

    @property
    def size(self) -> int:
        return self.response["ContentLength"]

    @property
    def etag(self) -> str:
        return self.response["ETag"].strip('"')

    @property
    def version_id(self) -> str | None:
        return _version(self.response.get("VersionId"))

    def close(self) -> None:
        if self.parallel is not None:
            self.parallel.close()
        self.response["Body"].close()


def new_client() -> S3Client:
    """A fresh client, made inside the handler's call path on every invocation, with no explicit
    credentials or endpoint so that the environment (moto, ``AWS_ENDPOINT_URL_S3``) decides."""
    return boto3.client("s3", config=CLIENT_CONFIG)


def client_for(expected_owner: str | None) -> S3Client:
    """``new_client``, whose every request that takes one carries ``ExpectedBucketOwner``
    (``EXPECTED_BUCKET_OWNER``): S3 then answers AccessDenied where the bucket belongs to another
    account, instead of reading or writing it. One hook on the client, so every call of this
    module and of ``handler.ranged`` (s3transfer's ranged GETs go through the same client)
    carries it; ``None``: no header."""
    client = new_client()
    if expected_owner is not None:

        def add_owner(params: dict[str, object], model: OperationModel, **_: object) -> None:
            shape = model.input_shape
            if shape is not None and "ExpectedBucketOwner" in shape.members:
                params.setdefault("ExpectedBucketOwner", expected_owner)

        client.meta.events.register("provide-client-params.s3", add_owner, unique_id=_OWNER_HOOK)
    return client


#: Names the hook of ``client_for``.
_OWNER_HOOK: Final = "market-totals-expected-bucket-owner"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _unreadable(error: ClientError) -> InputUnreadable | None:
    """The permanent refusal a GET's error is, or ``None`` for any other (throttling, 5xx and
    AccessDenied stay retried: on the deployment's own bucket they pass)."""
    code = _code(error)
    message = str(error.response.get("Error", {}).get("Message", "")) or code
    if code in UNREADABLE:
        return InputUnreadable(UNREADABLE[code], message)
    # S3's words for a GET of an SSE-C object without its key: "The object was stored using a
    # form of Server Side Encryption. The correct parameters must be provided to retrieve the
    # object."
    if code == "InvalidRequest" and "server side encryption" in message.lower():
        return InputUnreadable(CUSTOMER_KEY_ENCRYPTED, message)
    return None


def _version(version_id: str | None) -> str | None:
    # Unversioned buckets answer "null" (or nothing); results say JSON null.
    return None if version_id in (None, "", "null") else version_id


def open_input(
    client: S3Client,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str | None,
    *,
    parallel: ParallelRead | None = None,
) -> InputObject:
    """Open the key's current object, without reading its body, and only if it is the version
    the event names (``version_id``, ``etag``: where the event names them). Never a version by
    its id: one behind a delete marker is never totalled again (a result follows its input out
    of existence). Raises ``InputGone`` where the key has no current object or another version
    is current; any other error propagates.

    Where ``parallel`` applies to the object's size, its body is read with ranged GETs of the
    version this GET returned (``handler.ranged``); this GET's own stream is closed unread.
    """
    try:
        if etag:
            response = client.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
        else:  # an event naming no version (a backfill, Batch Operations): read what is there
            response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in _GONE:
            raise InputGone(Reason.SOURCE_DELETED) from None
        if _code(error) in _CONFLICT:
            raise InputGone(Reason.SOURCE_CHANGED) from None
        if refused := _unreadable(error):
            raise refused from None
        raise
    source = InputObject(response)
    if version_id and source.version_id != version_id:
        source.close()  # a newer version is current: its own event covers it
        raise InputGone(Reason.SOURCE_CHANGED)
    if parallel is not None and parallel.applies(source.size):
        # Imported for large objects only: a cold start that reads a small one does not pay it.
        from handler.ranged import ParallelBody  # noqa: PLC0415

        source.response["Body"].close()
        body = ParallelBody(
            client,
            bucket,
            key,
            size=source.size,
            etag=source.etag,
            version_id=source.version_id,
            part_bytes=parallel.part_bytes,
            concurrency=parallel.concurrency,
        )
        return InputObject(response, body)
    return source


def current_version(client: S3Client, bucket: str, key: str) -> Version | None:
    """The key's current object (its version id and ETag), or ``None`` where the key has none:
    deleted in an unversioned bucket, or a delete marker current in a versioned one (a HEAD
    without a version id answers 404 to both)."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in _GONE:
            return None
        raise
    return Version(_version(head.get("VersionId")), head["ETag"].strip('"'), None)


def is_current(client: S3Client, bucket: str, key: str, version: Version) -> bool:
    """Whether ``version`` (as read) is still the key's current object: asked again after a
    conflicting write, when the result another invocation wrote may come from a newer one, or
    the result we compared against was withdrawn because the key was deleted."""
    now = current_version(client, bucket, key)
    return now is not None and now.same_as(version)


def stored_result(client: S3Client, bucket: str, key: str) -> StoredResult | None:
    """The result that is there now, or ``None``."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in _GONE:
            return None
        raise
    return _stored(head["ETag"], head.get("Metadata", {}))


def _stored(etag: str, metadata: Mapping[str, str]) -> StoredResult:
    return StoredResult(
        etag=etag,
        sequencer=metadata.get(SEQUENCER_META),
        source_digest=metadata.get(SOURCE_KEY_META),
        version_id=metadata.get(VERSION_META),
        source_etag=metadata.get(ETAG_META),
    )


def write_result(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytes,
    *,
    source_key: str,
    source: Version,
    replaces: StoredResult | None,
) -> StoredResult:
    """Write a result object computed from ``source`` (a version of ``source_key``), and return
    it as a HEAD would now see it.

    The write succeeds only if the result is still ``replaces`` (``None``: still absent);
    otherwise it raises ``ResultConflict``, also where the result ``replaces`` names has been
    deleted since. What the ordering rules compare is stored as metadata: only a sequencer that
    can order anything, and only ASCII (S3's rule for metadata).
    """
    metadata = {SOURCE_KEY_META: key_digest(source_key)}
    if is_real_sequencer(source.sequencer) and source.sequencer is not None:
        metadata[SEQUENCER_META] = source.sequencer
    if source.version_id is not None and source.version_id.isascii():
        metadata[VERSION_META] = source.version_id
    if source.etag is not None and source.etag.isascii():
        metadata[ETAG_META] = source.etag
    request: PutObjectRequestTypeDef = {
        "Bucket": bucket,
        "Key": key,
        "Body": body,
        "ContentType": "application/json",
        "Metadata": metadata,
    }
    if replaces is None:
        request["IfNoneMatch"] = "*"
    else:
        request["IfMatch"] = replaces.etag
    try:
        response = client.put_object(**request)
    except ClientError as error:
        code = _code(error)
        if code in _CONFLICT or (replaces is not None and code in _GONE):
            raise ResultConflict(key) from None
        raise
    return _stored(response["ETag"], metadata)


def read_result_source(client: S3Client, bucket: str, key: str) -> tuple[StoredResult, str] | None:
    """The result at ``key`` and the input key its body names (``source.key``), or ``None``
    where there is no result there, or the object is not one of ours. One GET: what a backfill
    reads of a result whose folder lists no input, to tell which key it must look at."""
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in _GONE:
            return None
        raise
    with contextlib.closing(response["Body"]) as body:
        try:
            source = json.loads(body.read()).get("source", {})
        except (ValueError, AttributeError):
            return None
    source_key = source.get("key") if isinstance(source, dict) else None
    if not isinstance(source_key, str):
        return None
    return _stored(response["ETag"], response.get("Metadata", {})), source_key


def withdraw_result(client: S3Client, bucket: str, key: str, *, replaces: StoredResult) -> bool:
    """Remove the result object, only if it is still ``replaces`` (S3's ``If-Match`` on
    DeleteObject): a result written meanwhile, for a newer upload, is never removed. Raises
    ``ResultConflict`` where it changed, or is already gone. Returns whether the removal was
    conditional.

    Stores that do not implement conditional deletes (LocalStack's S3 answers ``NotImplemented``;
    S3 has them since September 2025) get a HEAD, and an unconditional DELETE if the result is
    still ``replaces``: ``False`` then, and the caller looks at the key again, since a result
    written between the two requests went with it.
    """
    try:
        client.delete_object(Bucket=bucket, Key=key, IfMatch=replaces.etag)
    except ClientError as error:
        if _code(error) in _CONFLICT or _code(error) in _GONE:
            raise ResultConflict(key) from None
        if _code(error) != _NOT_IMPLEMENTED:
            raise
    else:
        return True
    now = stored_result(client, bucket, key)
    if now is None or now.etag != replaces.etag:
        raise ResultConflict(key)
    client.delete_object(Bucket=bucket, Key=key)
    return False
