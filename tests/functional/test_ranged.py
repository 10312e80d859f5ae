"""The parallel read of large objects (``handler/ranged.py``): parts fetched with ranged GETs in
parallel and handed to the core in order, every part pinned to the version the first response
returned, failures raised from ``read`` (never answered as invalid input), memory bounded, and
small objects still read with one GET.

Unit tests run on ``mock_aws``; the fault tests over real HTTP to a moto server (``harness``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError

from handler import ranged, storage
from handler.app import RecordsFailed, lambda_handler
from handler.ranged import ParallelBody
from handler.rules.settings import ParallelRead
from handler.totals import READ_SIZE, InvalidDocument, total_prices
from tests.faults import Fault, cut_body, error_status, on_handler_clients, stream_reset
from tests.support import BUCKET, batch_event, read_result, upload

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

pytest_plugins = ["tests.harness"]

KEY = "big/market_infos.json"
RESULT = "big/total_price.json"
MiB = 1024 * 1024


def document(count: int) -> tuple[bytes, Decimal]:
    """A valid document of ``count`` products, with a BOM, non-ASCII names (multi-byte UTF-8
    that part boundaries cut through) and nested objects; and its exact total."""
    products = [
        f'{{"name": "Käse № {i}", "price": {i}.{i % 100:02d}, "meta": {{"x": [{i}]}}}}'
        for i in range(count)
    ]
    total = sum((Decimal(f"{i}.{i % 100:02d}") for i in range(count)), Decimal(0))
    body = '\ufeff{"market": "ü", "products": [' + ", ".join(products) + "]}"
    return body.encode(), total


def open_body(
    s3: S3Client, data: bytes, *, part_bytes: int, concurrency: int, key: str = KEY
) -> ParallelBody:
    """Upload ``data`` and open it as the handler does: a first GET, then the parallel read
    pinned to the version that GET returned."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    first = s3.get_object(Bucket=BUCKET, Key=key)
    first["Body"].close()
    version = first.get("VersionId")
    return ParallelBody(
        s3,
        BUCKET,
        key,
        size=first["ContentLength"],
        etag=first["ETag"].strip('"'),
        version_id=None if version in (None, "null") else version,
        part_bytes=part_bytes,
        concurrency=concurrency,
    )


def read_all(body: ParallelBody, size: int) -> bytes:
    pieces = []
    while piece := body.read(size):
        assert len(piece) <= size
        pieces.append(piece)
    return b"".join(pieces)


def gets(s3: S3Client) -> list[dict[str, Any]]:
    """The parameters of every GetObject the client sends from now on (any thread)."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append({**params, "thread": threading.get_ident()})

    s3.meta.events.register("before-parameter-build.s3.GetObject", record)
    return sent


# --- order ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("part_bytes", "concurrency"), [(7, 3), (64, 1), (1000, 8), (4096, 2)])
@pytest.mark.parametrize("read_size", [1, 5, 256 * 1024])
def test_parts_come_in_order_across_their_boundaries(
    s3: S3Client, part_bytes: int, concurrency: int, read_size: int
) -> None:
    data = bytes(range(256)) * 12 + b"tail"  # no two parts alike
    body = open_body(s3, data, part_bytes=part_bytes, concurrency=concurrency)
    try:
        assert body.read(0) == b""
        assert read_all(body, read_size) == data
        assert body.read(read_size) == b""  # and the end stays the end
    finally:
        body.close()


def test_read_without_a_size_reads_everything(s3: S3Client) -> None:
    data = b"0123456789" * 100
    body = open_body(s3, data, part_bytes=33, concurrency=4)
    try:
        assert body.read() == data
    finally:
        body.close()


@pytest.mark.parametrize("part_bytes", [31, 97, 4096])
def test_the_total_through_tiny_parts_is_the_total_of_the_bytes(
    s3: S3Client, part_bytes: int
) -> None:
    data, total = document(150)
    body = open_body(s3, data, part_bytes=part_bytes, concurrency=4)
    try:
        result = total_prices(body)
    finally:
        body.close()
    assert (result.total, result.product_count) == (total, 150)
    assert result.total == total_prices(_Bytes(data)).total


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1, /) -> bytes:
        size = len(self._data) if size < 0 else size
        out, self._data = self._data[:size], self._data[size:]
        return out


def test_the_parts_are_fetched_concurrently_and_ranged(s3: S3Client) -> None:
    data = bytes(1000)
    body = open_body(s3, data, part_bytes=100, concurrency=4)
    sent = gets(s3)
    try:
        assert read_all(body, 1000) == data
    finally:
        body.close()
    ranges = sorted(int(p["Range"].removeprefix("bytes=").split("-")[0]) for p in sent)
    assert ranges == list(range(0, 1000, 100))
    assert len({p["thread"] for p in sent}) > 1


# --- pinned to one version --------------------------------------------------------------------


def overwrite_after_first_part(s3: S3Client, key: str, replacement: bytes) -> list[str]:
    """Overwrite ``key`` once the first part was requested (the next parts see the new
    object); returns the ETags/VersionIds each part asked for."""
    asked: list[str] = []

    def between_parts(params: dict[str, Any], **_: Any) -> None:
        asked.append(params.get("VersionId") or params["IfMatch"])
        if len(asked) == 2:
            s3.put_object(Bucket=BUCKET, Key=key, Body=replacement)

    s3.meta.events.register("before-parameter-build.s3.GetObject", between_parts)
    return asked


def test_an_overwrite_between_parts_fails_instead_of_mixing_versions(s3: S3Client) -> None:
    old, new = b"a" * 500, b"b" * 500
    body = open_body(s3, old, part_bytes=100, concurrency=1)
    etag = s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"]
    asked = overwrite_after_first_part(s3, KEY, new)
    got: list[bytes] = []

    def read_through() -> None:
        while piece := body.read(50):
            got.append(piece)

    try:
        with pytest.raises(S3DownloadFailedError, match="did not match expected ETag"):
            read_through()
    finally:
        body.close()
    assert old.startswith(b"".join(got))  # all handed out before the failure is the old version
    assert set(asked) == {etag}  # every part asked If-Match on the first response's ETag


@pytest.mark.usefixtures("versioned")
def test_a_versioned_read_stays_on_its_version_through_an_overwrite(s3: S3Client) -> None:
    old, new = b"a" * 500, b"b" * 500
    body = open_body(s3, old, part_bytes=100, concurrency=1)
    version = s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    asked = overwrite_after_first_part(s3, KEY, new)
    try:
        assert read_all(body, 64) == old
    finally:
        body.close()
    assert set(asked) == {version}


# --- failures ---------------------------------------------------------------------------------


def fail_ranged_gets(s3: S3Client, error: BaseException, *, times: int) -> list[int]:
    """Make the body of the ranged GETs of the part at offset 100 raise ``error`` after 10
    bytes, ``times`` times; returns how many attempts that part took."""
    attempts = [0]

    def breaking(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("ContentRange", "").startswith("bytes 100-"):
            attempts[0] += 1
            if attempts[0] <= times:
                parsed["Body"] = _Breaking(parsed["Body"], error)

    s3.meta.events.register("after-call.s3.GetObject", breaking)
    return attempts


class _Breaking:
    def __init__(self, body: Any, error: BaseException) -> None:
        self._body = body
        self._error = error
        self._left = 10

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0:
            raise self._error
        data: bytes = self._body.read(min(amt or self._left, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._body.close()


def test_a_dropped_part_is_fetched_again(s3: S3Client) -> None:
    from botocore.exceptions import ResponseStreamingError

    data = bytes(range(250)) * 2
    body = open_body(s3, data, part_bytes=100, concurrency=2)
    attempts = fail_ranged_gets(s3, ResponseStreamingError(error="reset"), times=1)
    try:
        assert read_all(body, 30) == data
    finally:
        body.close()
    assert attempts == [2]


def test_a_part_that_keeps_failing_is_raised_from_read_and_by_the_core(s3: S3Client) -> None:
    from botocore.exceptions import ResponseStreamingError

    data, _ = document(50)
    body = open_body(s3, data, part_bytes=100, concurrency=2)
    attempts = fail_ranged_gets(s3, ResponseStreamingError(error="reset"), times=99)
    try:
        with pytest.raises(RetriesExceededError) as raised:
            total_prices(body)
    finally:
        body.close()
    assert not isinstance(raised.value, InvalidDocument)
    assert attempts == [ranged.PART_ATTEMPTS]


def test_an_error_answer_to_a_part_is_raised_unchanged(s3: S3Client) -> None:
    data = bytes(500)
    body = open_body(s3, data, part_bytes=100, concurrency=2)
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    def deny(params: dict[str, Any], **_: Any) -> None:
        if params["Range"] != "bytes=0-99":
            raise refused

    s3.meta.events.register("before-parameter-build.s3.GetObject", deny)
    try:
        with pytest.raises(ClientError) as raised:
            read_all(body, 100)
    finally:
        body.close()
    assert raised.value is refused


# --- no request before the first read, none after close --------------------------------------


def test_nothing_is_fetched_before_the_first_read(s3: S3Client) -> None:
    body = open_body(s3, bytes(500), part_bytes=100, concurrency=2)
    sent = gets(s3)
    assert body.read(0) == b""
    body.close()
    assert sent == []


def test_close_in_the_middle_cancels_the_rest(s3: S3Client) -> None:
    body = open_body(s3, bytes(100_000), part_bytes=1000, concurrency=2)
    sent = gets(s3)
    assert body.read(10) == bytes(10)
    body.close()
    requested = len(sent)
    assert requested < 100  # far from every part
    time.sleep(0.05)
    assert len(sent) == requested  # and nothing more once closed
    with pytest.raises(ValueError, match="closed"):
        body.read(10)


# --- bounded memory ----------------------------------------------------------------------------


def test_bytes_held_stay_bounded_while_the_reader_is_slow(s3: S3Client) -> None:
    """Bytes taken off the network but not yet read by the core never exceed about
    ``concurrency`` parts, however far ahead the network could run."""
    part, concurrency = 1 * MiB, 3
    data = bytes(16 * MiB)
    body = open_body(s3, data, part_bytes=part, concurrency=concurrency)
    received = [0]
    lock = threading.Lock()

    class Counting:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, amt: int | None = None) -> bytes:
            chunk: bytes = self._inner.read(amt)
            with lock:
                received[0] += len(chunk)
            return chunk

        def close(self) -> None:
            self._inner.close()

    def count(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Body"] = Counting(parsed["Body"])

    s3.meta.events.register("after-call.s3.GetObject", count)
    consumed = 0
    held = []
    try:
        while piece := body.read(READ_SIZE):
            consumed += len(piece)
            time.sleep(0.002)  # the core, slower than the network
            with lock:
                held.append(received[0] - consumed)
    finally:
        body.close()
    assert consumed == len(data)
    assert max(held) <= ranged.max_held_bytes(part, concurrency)
    assert max(held) >= part  # it did read ahead


# --- through the handler ---------------------------------------------------------------------


@pytest.fixture
def parallel_from_2_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects of 2 MiB or more read in 1 MiB parts, two at a time."""
    monkeypatch.setenv("PARALLEL_READ_BYTES", str(2 * MiB))
    monkeypatch.setenv("PARALLEL_READ_PART_BYTES", str(1 * MiB))
    monkeypatch.setenv("PARALLEL_READ_CONCURRENCY", "2")


def sized_document(at_least: int) -> tuple[bytes, Decimal]:
    count = at_least // 60 + 1
    data, total = document(count)
    assert len(data) >= at_least
    return data, total


@pytest.mark.usefixtures("parallel_from_2_mib")
def test_a_small_object_takes_one_get(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    data, total = sized_document(1 * MiB)
    assert len(data) < 2 * MiB
    record = lambda_handler(upload(s3, KEY, data, sequencer="0A"), context)["records"][0]
    assert record["status"] == "ok"
    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]  # r4: the look
    assert read_result(s3, RESULT)["total"] == total


@pytest.mark.usefixtures("parallel_from_2_mib")
def test_a_large_object_is_read_in_parts_to_the_same_total(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    data, total = sized_document(3 * MiB + 5)
    parts = -(-len(data) // MiB)
    record = lambda_handler(upload(s3, KEY, data, sequencer="0A"), context)["records"][0]
    assert record["status"] == "ok"
    # The first GET gives the size and the version; the parts follow it.
    assert s3_calls == [
        "HeadObject",
        "GetObject",
        *["GetObject"] * parts,
        "PutObject",
        "HeadObject",  # contract r4: the look at the key after the PUT
    ]
    result = read_result(s3, RESULT)
    assert (result["total"], result["source"]["size"]) == (total, len(data))


@pytest.mark.usefixtures("parallel_from_2_mib")
def test_a_large_object_over_the_limit_is_not_read(
    s3: S3Client, context: LocalContext, s3_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_INPUT_BYTES", str(2 * MiB))
    data, _ = sized_document(3 * MiB)
    record = lambda_handler(upload(s3, KEY, data, sequencer="0A"), context)["records"][0]
    assert record["status"] == "invalid"
    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]  # r4: the look
    assert read_result(s3, RESULT)["error"]["code"] == "TooLarge"


@pytest.mark.usefixtures("parallel_from_2_mib")
def test_a_batch_task_reads_a_large_object_in_parallel_parts(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    # A task names no version: the HEAD of the result and the GET of the source go out together,
    # and the GET honours the parallel read settings like any other.
    data, total = sized_document(3 * MiB)
    upload(s3, KEY, data)

    answer = lambda_handler(batch_event(KEY), context)

    assert answer["results"][0]["resultCode"] == "Succeeded"
    assert s3_calls.count("GetObject") > 1  # ranged parts, not one stream
    result = read_result(s3, RESULT)
    assert (result["product_count"], result["total"]) == (data.count(b"price"), total)


def on_ranged_gets(monkeypatch: pytest.MonkeyPatch, fault: Fault, *, times: int) -> list[int]:
    """``fault`` on the handler's ranged GETs (the parts), ``times`` times; the count of parts'
    attempts."""
    attempts = [0]

    def hook(request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        if not event_name.endswith("GetObject") or "Range" not in request.headers:
            return None
        attempts[0] += 1
        return fault(request) if attempts[0] <= times else None

    def install(client: S3Client) -> None:
        client.meta.events.register_first("before-send.s3", _typed(hook))

    on_handler_clients(monkeypatch, install)
    return attempts


def _typed(hook: Callable[..., AWSResponse | None]) -> Callable[..., None]:
    return hook  # type: ignore[return-value]  # the stubs' handler type is too narrow


@pytest.mark.usefixtures("parallel_from_2_mib", "backoffs")
def test_a_part_failing_on_every_retry_fails_the_record_and_writes_nothing(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, total = sized_document(3 * MiB)
    event = upload(server_s3, KEY, data, sequencer="0A")
    on_ranged_gets(monkeypatch, error_status(500, "InternalError"), times=10**6)

    with pytest.raises(RecordsFailed, match="InternalError"):
        lambda_handler(event, context)
    assert "Contents" not in server_s3.list_objects_v2(Bucket=BUCKET, Prefix=RESULT)

    monkeypatch.undo()  # the fault is gone: Lambda's retry of the event succeeds
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server_s3.meta.endpoint_url)
    assert lambda_handler(event, context)["records"][0]["status"] == "ok"
    assert read_result(server_s3, RESULT)["total"] == total


@pytest.mark.usefixtures("parallel_from_2_mib", "backoffs")
@pytest.mark.parametrize(("times", "outcome"), [(1, "ok"), (10**6, "raised")])
def test_a_part_whose_connection_breaks_is_resumed_or_raised(
    server_s3: S3Client,
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
    times: int,
    outcome: str,
) -> None:
    data, total = sized_document(3 * MiB)
    event = upload(server_s3, KEY, data, sequencer="0A")
    on_ranged_gets(monkeypatch, cut_body(1000, stream_reset()), times=times)

    if outcome == "ok":
        assert lambda_handler(event, context)["records"][0]["status"] == "ok"
        assert read_result(server_s3, RESULT)["total"] == total
    else:
        with pytest.raises(RecordsFailed, match="RetriesExceededError"):
            lambda_handler(event, context)
        assert "Contents" not in server_s3.list_objects_v2(Bucket=BUCKET, Prefix=RESULT)


def test_a_writer_waiting_on_a_full_pipe_is_released_when_the_reader_closes() -> None:
    pipe = ranged._Pipe(limit=10)
    outcome: list[BaseException | int] = []

    def writer() -> None:
        try:
            for _ in range(3):
                outcome.append(pipe.write(b"x" * 8))
        except ranged.ReaderClosed as closed:
            outcome.append(closed)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    assert outcome == [8, 8]  # the third write waits: 16 bytes are held, the limit is 10
    pipe.close()
    thread.join(timeout=5)
    assert isinstance(outcome[-1], ranged.ReaderClosed)


def test_the_pipe_serves_its_chunks_in_order_whatever_the_read_sizes() -> None:
    pipe = ranged._Pipe(limit=100)
    for chunk in (b"abcdef", b"gh", b"ijklmnop"):
        pipe.write(chunk)
    pipe.finish(None)

    reads = [pipe.read(size) for size in (4, 4, 1, 3, 100, 1)]

    assert reads == [b"abcd", b"efgh", b"i", b"jkl", b"mnop", b""]


def test_the_pipe_frees_room_as_a_chunk_is_read_in_pieces() -> None:
    pipe = ranged._Pipe(limit=8)
    pipe.write(b"x" * 8)
    written = threading.Event()

    def writer() -> None:
        pipe.write(b"y" * 8)
        written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not written.wait(0.05)  # 8 bytes held: the limit
    assert pipe.read(3) == b"xxx"
    assert written.wait(5)  # 5 held now: the writer got through
    thread.join(timeout=5)
    assert pipe.read(100) == b"xxxxx" + b"y" * 8


@pytest.mark.usefixtures("versioned")
def test_a_version_opened_for_a_parallel_read_is_read_to_its_end_through_an_overwrite(
    s3: S3Client,
) -> None:
    old, new = b"a" * 500, b"b" * 500
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=old)["VersionId"]
    source = storage.open_input(
        s3, BUCKET, KEY, version, None, parallel=ParallelRead(1, part_bytes=100, concurrency=2)
    )
    assert source.parallel is not None
    asked = overwrite_after_first_part(s3, KEY, new)
    try:
        assert read_all(source.parallel, 64) == old
    finally:
        source.close()
    assert len(asked) == 5
    assert set(asked) == {version}  # every part asks for the version the first GET read
