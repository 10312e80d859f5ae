"""One measurement in a fresh process: ``python bench/worker.py KIND OUT.json [ARGS...]``.

Run by ``bench/run.py`` with ``src`` on PYTHONPATH, the environment pointing boto3
at the moto server, and stdout discarded (Powertools logs and metrics go there, as in Lambda).
Each writes one JSON object to OUT.json; ``peak_rss_mb`` is this whole process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

BUCKET = "bench"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def sequencer() -> str:
    # Grows with time, so each invocation is a later event for the ordering rules.
    return f"{time.time_ns():020X}"


def event_for(key: str, *, seq: str | None = None, etag: str | None = None) -> dict[str, Any]:
    import boto3

    from localrun.invoke import put_event

    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=key)
    return put_event(
        BUCKET,
        key,
        etag=etag or head["ETag"].strip('"'),
        size=head["ContentLength"],
        sequencer=seq or sequencer(),
    )


def measure_import(modules: str) -> dict[str, Any]:
    """Import ``modules`` (comma-separated) in this fresh process: the cold start's imports."""
    start = time.perf_counter()
    for module in modules.split(","):
        __import__(module)
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


#: What Powertools' Logger reads of Lambda's context, and the remaining time the handler
#: bounds its work by (``local_invoke.LocalContext``, which cannot be imported here before the
#: clock starts: it imports boto3).
CONTEXT = {
    "function_name": "market-totals-bench",
    "memory_limit_in_mb": 128,
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:market-totals-bench",
    "aws_request_id": "bench",
    "get_remaining_time_in_millis": lambda: 900_000,
}


def first_invocation(function: str, event_file: str) -> dict[str, Any]:
    """A cold start as Lambda runs it: the imports, then the first invocation, in this fresh
    process, each timed; ``function`` is ``handler`` or ``tutorial``. What a lazy import moves
    out of the first shows up in the second."""
    from types import SimpleNamespace

    event = json.loads(Path(event_file).read_text())
    start = time.perf_counter()
    if function == "handler":
        from handler.app import lambda_handler

        imported = time.perf_counter()
        answer = lambda_handler(event, SimpleNamespace(**CONTEXT))
    else:
        import boto3  # noqa: F401 - the tutorial's imports (json is imported above)

        imported = time.perf_counter()
        answer = tutorial(event)
    done = time.perf_counter()
    return {
        "import": imported - start,
        "invocation": done - imported,
        "seconds": done - start,
        "answer": answer,
    }


def first_events(key: str, run: str) -> dict[str, Any]:
    """Untimed, before each ``first_invocation``: new bytes at ``key`` with no result yet, and
    the S3 notification and SQS message (S3 -> SQS) that would tell of them."""
    import boto3

    from localrun.invoke import put_event

    client = boto3.client("s3")
    client.delete_object(Bucket=BUCKET, Key=key.rsplit("/", 1)[0] + "/total_price.json")
    body = b'{"products": [{"price": 1.50}, {"price": 2}]}' + b" " * int(run)
    etag = client.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    notification = put_event(BUCKET, key, etag=etag, size=len(body), sequencer=sequencer())
    message = {
        "messageId": f"bench-{run}",
        "receiptHandle": "bench",
        "body": json.dumps(notification),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:market-totals-bench",
        "awsRegion": "us-east-1",
    }
    return {"s3": notification, "sqs": {"Records": [message]}}


#: The records of the request table, each after what makes it that kind of record: its rows in
#: a container that knows the result (it wrote or read it) and in one that does not.
RECORD_KINDS = (
    "fresh",
    "duplicate",
    "stale",
    "superseded",
    "stale, still current",
    "update",
    "unreadable",
    "reconcile, re-uploaded",
    "reconcile, deleted",
)


def count_requests(prefix: str) -> dict[str, Any]:
    """S3 requests of each kind of record (``RECORD_KINDS``, then the deletions and a refused
    bucket), each on a key of its own under ``prefix``, counted by a ``before-send`` hook on
    the handler's clients; what sets a record up goes through a client made before the hook,
    uncounted:

    - fresh: no result yet (where known: this container withdrew the key's result, and the key
      was uploaded again);
    - duplicate: the same event again;
    - stale: its version overwritten before it ran;
    - superseded: older by sequencer than the event processed, and the key has moved on;
    - stale, still current: older by sequencer than the result's event, but its bytes are the
      key's current object again (uploaded again), so the result does not reflect the key;
    - update: a new version of a key that has a result;
    - unreadable: a new version stored as GLACIER (S3 answers its GET InvalidObjectState);
    - reconcile: an update whose look after its PUT finds the key changed, by a hook that
      uploads the key again (or deletes it) right after the result's PUT: the result is
      totalled again (or withdrawn).
    """
    import boto3

    from handler.app import lambda_handler
    from handler.result_store import KNOWN
    from localrun.invoke import LocalContext

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    setup = boto3.client("s3")  # before the hooks: its requests are not counted
    sent: list[str] = []
    after_put: list[Any] = []

    def before_send(request: Any, **_: Any) -> None:
        sent.append(request.method)

    def put_done(**_: Any) -> None:
        while after_put:
            after_put.pop()()  # once: the settle's own PUT is left alone

    boto3.DEFAULT_SESSION.events.register("before-send.s3", before_send)
    boto3.DEFAULT_SESSION.events.register("after-call.s3.PutObject", put_done)

    def handle(event: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = lambda_handler(event, LocalContext())["records"][0]
        return status

    table: dict[str, Any] = {}

    def counted(event: dict[str, Any]) -> dict[str, Any]:
        sent.clear()
        status = handle(event)
        return {"requests": len(sent), "methods": list(sent), "status": status}

    for kind in RECORD_KINDS:
        for knows in (True, False):
            slug = kind.replace(",", "").replace(" ", "-")
            key = f"{prefix}/{slug}-{knows}/market_infos.json"
            event = prepare_record(kind, Uploads(setup, key), handle, after_put)
            if not knows:
                KNOWN.clear()
            table[f"{kind}/{'known' if knows else 'unknown'}"] = counted(event)

    # A deletion always asks S3 for the result and the key: what the container knows is unused.
    deletions = count_deletion_requests(setup, f"{prefix}/deletions/market_infos.json", counted)
    table.update({f"{name}/any": entry for name, entry in deletions.items()})
    table["refused bucket/any"] = count_refused(f"{prefix}/refused/market_infos.json", counted)
    return table


class Uploads:
    """Uploads to one key of the request table, each returned as its S3 notification."""

    def __init__(self, setup: Any, key: str) -> None:
        self.setup, self.key = setup, key

    def put(self, price: int, **extra: Any) -> dict[str, Any]:
        from localrun.invoke import put_event

        body = f'{{"products": [{{"price": {price}}}]}}'.encode()
        etag = self.setup.put_object(Bucket=BUCKET, Key=self.key, Body=body, **extra)["ETag"]
        return put_event(
            BUCKET, self.key, etag=etag.strip('"'), size=len(body), sequencer=sequencer()
        )

    def delete(self) -> dict[str, Any]:
        from localrun.invoke import delete_and_tell

        return delete_and_tell(self.setup, BUCKET, self.key)


def prepare_record(
    kind: str, uploads: Uploads, handle: Any, after_put: list[Any]
) -> dict[str, Any]:
    """What makes a record of ``kind`` (``count_requests``), its earlier events handled; the
    record's own event, not yet handled."""
    first = uploads.put(1)
    if kind == "fresh":
        handle(first)
        handle(uploads.delete())  # withdrawn by this container: known as absent
        return uploads.put(2)
    handle(first)
    if kind == "duplicate":
        return first
    if kind in {"stale", "update", "unreadable"} or kind.startswith("reconcile"):
        return next_version(kind, uploads, after_put)
    handle(uploads.put(2))
    if kind == "stale, still current":
        uploads.put(1)  # the first bytes again: the first event's ETag is current once more
    return first  # superseded, or stale but still current


def next_version(kind: str, uploads: Uploads, after_put: list[Any]) -> dict[str, Any]:
    """A second version's event, the key as ``kind`` wants it when the record runs."""
    if kind == "unreadable":
        return uploads.put(2, StorageClass="GLACIER")
    if kind == "reconcile, deleted":
        after_put.append(lambda: uploads.setup.delete_object(Bucket=BUCKET, Key=uploads.key))
    elif kind == "reconcile, re-uploaded":
        after_put.append(lambda: uploads.put(3))
    second = uploads.put(2)
    if kind == "stale":
        uploads.put(3)  # overwrites the version the event names, before it ran
    return second


def count_refused(key: str, run: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """An event from a bucket the deployment does not act on (``SOURCE_BUCKETS`` names
    another): answered before any request."""
    import os

    from localrun.invoke import put_event

    os.environ["SOURCE_BUCKETS"] = BUCKET
    try:
        return run(put_event("not-ours", key, etag="0" * 32, size=2, sequencer=sequencer()))
    finally:
        del os.environ["SOURCE_BUCKETS"]


def count_deletion_requests(setup: Any, key: str, run: Any) -> dict[str, Any]:
    """S3 requests of deletion events, in a versioned bucket (where a version can be removed):
    a late deletion (older than the upload already processed), a noncurrent version removed,
    the current version removed (the previous one is promoted), and a delete marker (the
    result is withdrawn)."""
    import contextlib

    from localrun.invoke import delete_and_tell, delete_event, put_event

    # ``setup`` was made before the counting hook: its own requests are not counted.
    bucket = f"{BUCKET}-versioned"
    with contextlib.suppress(setup.exceptions.BucketAlreadyOwnedByYou):
        setup.create_bucket(Bucket=bucket)
    setup.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def upload(price: int) -> tuple[str, str, dict[str, Any]]:
        body = f'{{"products": [{{"price": {price}}}]}}'.encode()
        put = setup.put_object(Bucket=bucket, Key=key, Body=body)
        seq = sequencer()
        event = put_event(
            bucket,
            key,
            etag=put["ETag"].strip('"'),
            size=len(body),
            sequencer=seq,
            version_id=put["VersionId"],
        )
        return put["VersionId"], seq, event

    versions = []
    for price in (1, 2, 3):
        version, seq, created = upload(price)
        run(created)
        versions.append((version, seq))
    late = delete_event(bucket, key, sequencer=f"{int(versions[0][1], 16) + 1:020X}")
    return {
        "late deletion": run(late),
        "noncurrent removed": run(delete_and_tell(setup, bucket, key, version_id=versions[0][0])),
        "promotion": run(delete_and_tell(setup, bucket, key, version_id=versions[2][0])),
        "withdrawal": run(delete_and_tell(setup, bucket, key)),
    }


def tutorial(event: dict[str, Any]) -> dict[str, Any]:
    """The usual tutorial function: whole body, json.loads (floats), sum, put; a client per call."""
    import boto3

    s3 = boto3.client("s3")
    record = event["Records"][0]["s3"]
    bucket, key = record["bucket"]["name"], record["object"]["key"]
    data = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    total = sum(product["price"] for product in data["products"])
    s3.put_object(Bucket=bucket, Key="tutorial/total_price.json", Body=json.dumps({"total": total}))
    return {"total": total}


def batch_event(key: str) -> dict[str, Any]:
    """An S3 Batch Operations task for ``key``: no version, ETag or sequencer (its HEAD and GET
    overlap)."""
    return {
        "invocationSchemaVersion": "2.0",
        "invocationId": "bench",
        "job": {"id": "bench", "userArguments": {}},
        "tasks": [{"taskId": "t", "s3Bucket": BUCKET, "s3Key": key, "s3VersionId": None}],
    }


def latency(key: str, calls: int) -> dict[str, Any]:
    """Warm invocations in this one process, alternating: ours for an S3 notification whose
    result the container knows (GET, then PUT) and one whose result it does not (HEAD with GET,
    then PUT), ours for a Batch Operations task (HEAD with GET, then PUT), and the tutorial's
    function (GET, PUT). Before each of ours, untimed, the object is uploaded again
    with other bytes, so that each is a fresh record that replaces an existing result, as
    when a market's file is updated. The requests of each timed call are recorded (a
    ``before-send`` hook, made for every function alike): ``methods`` holds the last call's."""
    import boto3

    from handler.app import lambda_handler
    from handler.result_store import KNOWN
    from localrun.invoke import LocalContext, put_event

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    client = boto3.client("s3")  # before the hook: the untimed uploads are not recorded
    sent: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        sent.append(request.method)

    boto3.DEFAULT_SESSION.events.register("before-send.s3", before_send)
    original = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    context = LocalContext()
    uploads = [0]

    def new_version() -> str:
        uploads[0] += 1  # trailing whitespace: other bytes, another ETag, the same total
        body = original + b" " * (uploads[0] % 1000)
        etag: str = client.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
        return etag

    def notification() -> dict[str, Any]:
        etag = new_version()
        return put_event(BUCKET, key, etag=etag, size=len(original), sequencer=sequencer())

    def batch() -> dict[str, Any]:
        new_version()
        return batch_event(key)

    def ours(event: dict[str, Any]) -> None:
        result = lambda_handler(event, context)
        status = result["records" if "records" in result else "results"][0]
        assert status.get("status", "ok") == "ok", result
        assert status.get("resultCode", "Succeeded") == "Succeeded", result
        assert "skipped" not in status.get("resultString", ""), result

    def notification_unknown() -> dict[str, Any]:
        KNOWN.clear()  # as in a container that never saw this result: its HEAD is made
        return notification()

    def unchanged() -> dict[str, Any]:
        return put_event(BUCKET, key, etag="-", size=len(original), sequencer=None)

    functions = (
        ("ours", notification, ours),
        ("unknown", notification_unknown, ours),
        ("batch", batch, ours),
        ("tutorial", unchanged, tutorial),
    )
    timings: dict[str, list[float]] = {name: [] for name, _, _ in functions}
    methods: dict[str, list[str]] = {}
    for i in range(calls + 3):  # the first 3 warm up (imports, connection pools)
        for name, prepare, fn in functions:
            event = prepare()
            sent.clear()
            start = time.perf_counter()
            fn(event)
            if i >= 3:
                timings[name].append(time.perf_counter() - start)
                methods[name] = list(sent)
    return {"seconds": timings, "methods": methods}


def invoke(key: str, calls: int, warm_key: str) -> dict[str, Any]:
    """Warm invocations of the handler on ``key`` (after one on ``warm_key``, untimed): the
    duration of each, for the bill. Each result is deleted first (untimed), so that each is
    a fresh record."""
    import boto3

    from handler.app import lambda_handler
    from localrun.invoke import LocalContext

    client = boto3.client("s3")
    context = LocalContext()

    def once(target: str) -> float:
        client.delete_object(Bucket=BUCKET, Key=target.rsplit("/", 1)[0] + "/total_price.json")
        event = event_for(target)
        start = time.perf_counter()
        summary = lambda_handler(event, context)
        seconds = time.perf_counter() - start
        assert summary["records"][0]["status"] == "ok", summary
        return seconds

    once(warm_key)
    seconds = [once(key) for _ in range(calls)]
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def throughput(method: str, key: str) -> dict[str, Any]:
    """Total one object with ``method``; time from the request to the total."""
    from decimal import Decimal

    import boto3

    if method == "ours":
        from handler.app import lambda_handler
        from localrun.invoke import LocalContext

        event = event_for(key)
        # A result from an earlier run would make this event a duplicate of it (same ETag).
        result_key = key.rsplit("/", 1)[0] + "/total_price.json"
        boto3.client("s3").delete_object(Bucket=BUCKET, Key=result_key)
        start = time.perf_counter()
        summary = lambda_handler(event, LocalContext())
        seconds = time.perf_counter() - start
        assert summary["records"][0]["status"] == "ok", summary
        result_key = summary["records"][0]["result_key"]
        body = boto3.client("s3").get_object(Bucket=BUCKET, Key=result_key)["Body"].read()
        total = json.loads(body, parse_float=Decimal)["total"]
        return {"seconds": seconds, "total": str(total), "peak_rss_mb": peak_rss_mb()}

    import ijson

    client = boto3.client("s3")
    start = time.perf_counter()
    stream = client.get_object(Bucket=BUCKET, Key=key)["Body"]
    if method == "json.loads":
        document = json.loads(stream.read(), parse_float=Decimal)
        total = sum((product["price"] for product in document["products"]), Decimal(0))
    elif method == "ijson":
        total = sum(ijson.items(stream, "products.item.price", use_float=False), Decimal(0))
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "total": str(total), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    kind, out, *args = sys.argv[1:]
    if kind == "import":
        result = measure_import(args[0])
    elif kind == "first":
        result = first_invocation(args[0], args[1])
    elif kind == "first-events":
        result = first_events(args[0], args[1])
    elif kind == "requests":
        result = count_requests(args[0])
    elif kind == "latency":
        result = latency(args[0], int(args[1]))
    elif kind == "invoke":
        result = invoke(args[0], int(args[1]), args[2])
    elif kind == "throughput":
        result = throughput(args[0], args[1])
    else:
        raise SystemExit(f"unknown kind {kind}")
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
