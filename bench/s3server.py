"""``moto_server``, with byte-range GETs served from the range alone: ``python bench/s3server.py
-H HOST -p PORT``.

moto answers a ranged GET by reading the whole object into memory and slicing it: a 1 GB object
read in 8 MiB parts would make it copy 120 GB, so moto, not the reader, would be measured. Here a
GET with one ``bytes=first-last`` range reads just that range from moto's own stored buffer.
Everything else (the version chosen, ``If-Match``, errors, headers) is moto's own code; the
benchmark checks that every method reports the same total.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3.models import FakeKey
from moto.s3.responses import S3Response
from moto.server import main

_request = threading.local()
_moto_value = FakeKey.value.fget  # type: ignore[attr-defined]
_moto_key_response = S3Response.key_response
_moto_range = S3Response._handle_range_header


def _wanted(request: Any) -> tuple[int, int | None] | None:
    """``(first, last)`` of a GET's single range (``last`` None: to the end), else None."""
    header = request.headers.get("range", "")
    if request.method != "GET" or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].partition("-")
    if not first.isdigit() or not (last.isdigit() or last == ""):
        return None
    return int(first), int(last) if last else None


def key_response(self: S3Response, request: Any, full_url: str, headers: Any) -> Any:
    _request.wanted = _wanted(request)
    _request.served = None
    try:
        return _moto_key_response(self, request, full_url, headers)
    finally:
        _request.wanted = _request.served = None


def value(self: FakeKey) -> bytes:
    wanted = getattr(_request, "wanted", None)
    if wanted is None or wanted[0] >= self.contentsize:
        return _moto_value(self)  # type: ignore[no-any-return]
    _request.wanted = None  # the body of this request only
    first, last = wanted
    last = self.contentsize - 1 if last is None else min(last, self.contentsize - 1)
    with self.lock:
        self._value_buffer.seek(first)
        data: bytes = self._value_buffer.read(last - first + 1)
    _request.served = (first, last, self.contentsize)
    return data


def handle_range_header(
    self: S3Response, request: Any, response_headers: dict[str, Any], response_content: Any
) -> Any:
    served = getattr(_request, "served", None)
    if served is None:
        return _moto_range(self, request, response_headers, response_content)
    first, last, size = served
    for name in [h for h in response_headers if h.startswith("x-amz-checksum-")]:
        del response_headers[name]  # as moto does: a range has no whole-object checksum
    response_headers["content-range"] = f"bytes {first}-{last}/{size}"
    response_headers["content-length"] = str(len(response_content))
    return 206, response_headers, response_content


S3Response.key_response = key_response  # type: ignore[method-assign]
S3Response._handle_range_header = handle_range_header  # type: ignore[method-assign]
FakeKey.value = property(value, FakeKey.value.fset)  # type: ignore[attr-defined,assignment]

if __name__ == "__main__":
    main()
