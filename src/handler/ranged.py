"""A large source version read with several byte-range GETs in flight, its bytes handed to the
core in order.

Why: one S3 GET stream gives about 50-100 MB/s in Lambda, while the core parses 130-180 MB/s on
a full vCPU; with a few ranged GETs in flight the network keeps ahead of the parser. Why not
threads of our own: s3transfer already orders, bounds and retries the parts, and a hand-written
reader measured no better (``docs/benchmarks.md``, "Notes").

How: s3transfer (boto3's own transfer library, packaged with it anyway) downloads to a
non-seekable target: ranged GETs of ``part_bytes`` on ``concurrency`` threads, written strictly in
order (its ``DeferQueue`` holds parts that finish early) by one writer thread, and never more
than ``concurrency`` parts ahead of the first unfinished one (its ``SlidingWindowSemaphore``).
A part whose stream drops is fetched again, without repeating bytes already handed on.
``_Pipe`` is that target: a small buffer between the writer thread and the core's ``read``.
When the core falls behind, writes block, the writer's queue fills, the window stops sliding and
no new GET starts, so memory stays bounded (about ``concurrency`` parts; ``docs/benchmarks.md``).

Every part asks for exactly the version the first response returned: ``VersionId`` where it had
one, and ``If-Match`` on its ETag always, so an overwrite between parts fails with 412 (raised
from ``read``) instead of mixing two versions' bytes. Any failure of a part that s3transfer's and
botocore's retries do not cure is raised from ``read`` unchanged, never taken for invalid input.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import IO, TYPE_CHECKING, Any, Final, cast

from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber

from handler.totals import READ_SIZE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from s3transfer.futures import TransferFuture

#: Bytes of each read from a part's stream, and of each write into the pipe. Every chunk passes
#: from a GET thread through s3transfer's writer thread to the core, and each handoff takes
#: Python's GIL from the parser: 1 MiB chunks (4 of the core's reads) gave 1 GB through the
#: S3-like network 5-20 % faster than 256 KiB ones; 2 and 4 MiB were no faster beyond the noise,
#: and 4 MiB took the peak RSS past 128 MB (docs/benchmarks.md).
IO_CHUNK_BYTES: Final = 4 * READ_SIZE

#: Bytes the pipe holds between s3transfer's writer thread and the core: one chunk, that is a
#: few of the core's reads, so that neither side waits for the other at every read.
PIPE_BYTES: Final = IO_CHUNK_BYTES

#: Chunks (of ``IO_CHUNK_BYTES``) queued for s3transfer's writer thread.
IO_QUEUE_CHUNKS: Final = 4

#: Attempts per part (a dropped stream is fetched again); each request also has botocore's own
#: retries (``storage.CLIENT_CONFIG``).
PART_ATTEMPTS: Final = 3


def max_held_bytes(part_bytes: int, concurrency: int) -> int:
    """The most bytes a parallel read holds that the core has not read yet.

    s3transfer's window lets ``concurrency`` parts be fetched from the first unfinished one on:
    the ``concurrency - 1`` after it may finish and wait whole; the first streams through the
    writer's queue and the pipe; and each GET thread, the writer and the pipe may hold one chunk
    beyond their limits.
    """
    chunk = min(IO_CHUNK_BYTES, part_bytes)
    return (concurrency - 1) * part_bytes + (IO_QUEUE_CHUNKS + concurrency + 2) * chunk + PIPE_BYTES


class ReaderClosed(Exception):
    """Raised to s3transfer's writer thread once the core has stopped reading: it cancels the
    rest of the download."""


class _Pipe:
    """Bytes written in order by one thread and read by another; at most about ``limit`` held.

    ``finish`` ends it: with ``None`` the reader sees the end of the object once it has read
    everything; with an error, the reader's next ``read`` raises it.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._start = 0  # of the first chunk, the first byte not yet read
        self._held = 0
        self._cond = threading.Condition()
        self._finished = False
        self._error: BaseException | None = None
        self._closed = False

    # s3transfer's writer thread --------------------------------------------------------------

    def write(self, data: bytes) -> int:
        with self._cond:
            while self._held >= self._limit and not self._closed:
                self._cond.wait()
            if self._closed:
                raise ReaderClosed
            self._chunks.append(bytes(data))
            self._held += len(data)
            self._cond.notify_all()
        return len(data)

    def finish(self, error: BaseException | None) -> None:
        with self._cond:
            self._finished = True
            self._error = error
            self._cond.notify_all()

    # The core's thread -------------------------------------------------------------------------

    def read(self, size: int = -1, /) -> bytes:
        if self._closed:
            raise ValueError("read of a closed body")
        if size == 0:
            return b""
        if size < 0:
            pieces = []
            while piece := self.read(READ_SIZE):
                pieces.append(piece)
            return b"".join(pieces)
        with self._cond:
            while not self._chunks and not self._finished:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            out = []
            wanted = size
            while self._chunks and wanted > 0:
                # The first chunk is served from ``_start`` on: a chunk larger than the reads
                # is sliced once per read, never copied whole again for what is left of it.
                chunk, start = self._chunks[0], self._start
                end = min(len(chunk), start + wanted)
                out.append(chunk if (start, end) == (0, len(chunk)) else chunk[start:end])
                wanted -= end - start
                self._held -= end - start
                if end == len(chunk):
                    self._chunks.popleft()
                    self._start = 0
                else:
                    self._start = end
            self._cond.notify_all()
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._start = 0
            self._held = 0
            self._cond.notify_all()


class _Announce(BaseSubscriber):
    """Gives s3transfer the size and ETag already known from the first response (so it sends no
    HEAD, and adds ``If-Match`` to every part), and ends the pipe when the download ends."""

    def __init__(self, size: int, etag: str, pipe: _Pipe) -> None:
        self._size = size
        self._etag = etag
        self._pipe = pipe

    def on_queued(self, future: TransferFuture, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self._size)
        future.meta.provide_object_etag(f'"{self._etag}"')

    def on_done(self, future: TransferFuture, **kwargs: Any) -> None:
        try:
            future.result()
        except BaseException as error:  # noqa: BLE001 - handed to the reader, raised there
            self._pipe.finish(error)
        else:
            self._pipe.finish(None)


class ParallelBody:
    """The body of one object version, read with ranged GETs in parallel and served in order by
    ``read``. Nothing is requested before the first ``read`` (a record may still be skipped, or
    answered ``TooLarge``, without it); ``close`` cancels whatever is still in flight, and must be
    called whether or not the body was read to its end."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        size: int,
        etag: str,
        version_id: str | None,
        part_bytes: int,
        concurrency: int,
    ) -> None:
        self._client = client
        self._where = (bucket, key)
        self._size = size
        self._etag = etag
        self._version_id = version_id
        self._config = TransferConfig(
            # Every object ranged, whatever its size: s3transfer adds If-Match to ranged GETs only.
            multipart_threshold=1,
            multipart_chunksize=part_bytes,
            max_request_concurrency=concurrency,
            max_in_memory_download_chunks=concurrency,
            # The writer's queue: a few chunks. The parts that finish early already wait in
            # s3transfer's DeferQueue; a longer queue would only hold more of them.
            max_io_queue_size=IO_QUEUE_CHUNKS,
            io_chunksize=IO_CHUNK_BYTES,
            num_download_attempts=PART_ATTEMPTS,
            max_submission_concurrency=1,
        )
        self._pipe = _Pipe(PIPE_BYTES)
        self._manager: TransferManager | None = None
        self._future: TransferFuture

    def _start(self) -> None:
        self._manager = TransferManager(self._client, self._config)
        bucket, key = self._where
        self._future = self._manager.download(
            bucket,
            key,
            # s3transfer writes to any object with ``write`` that cannot seek, in order.
            cast("IO[bytes]", self._pipe),
            extra_args={"VersionId": self._version_id} if self._version_id else {},
            subscribers=[_Announce(self._size, self._etag, self._pipe)],
        )

    def read(self, size: int = -1, /) -> bytes:
        if self._manager is None and size != 0:
            self._start()
        return self._pipe.read(size)

    def close(self) -> None:
        self._pipe.close()
        if self._manager is not None:
            # Not shutdown(cancel=True): s3transfer 0.19 passes its arguments to the cancel in
            # the wrong order there (a TypeError). Cancelling the one transfer is the same.
            self._future.cancel()
            self._manager.shutdown()
