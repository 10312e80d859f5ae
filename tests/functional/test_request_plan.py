"""Which round trips overlap, and what each kind of record costs in S3 requests
(``flows.created._head_with_get``; the request table of ``docs/benchmarks.md``).

Where this container does not know the stored result (a cold or new container, the first event
of a key), the GET of the source goes out beside the HEAD of the result: a fresh record then
waits for one round trip before its PUT, as a plain GET-then-PUT function does, and a duplicate
costs its HEAD and a GET closed unread. Where the container knows the result and that knowledge
would stop the record, the HEAD goes alone and the GET waits for its answer. S3 Batch
Operations tasks (no version, ETag or ordering sequencer) read the current object whatever is
stored, so their GET never waits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from botocore.response import StreamingBody
from hypothesis import given
from hypothesis import strategies as st

from handler import storage
from handler.app import RecordsFailed, lambda_handler
from handler.flows.created import _plan_ignores_result
from handler.result_store import KNOWN
from handler.rules.ordering import Plan, Version, plan
from localrun.invoke import delete_event
from tests.faults import error_status, on_handler_clients
from tests.support import BUCKET, batch_event, delete, read_result, upload, upload_price
from tests.support import first_record as run
from tests.support import upload_price as put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

KEY = "m/market_infos.json"
RESULT = "m/total_price.json"

versions = st.builds(
    Version,
    version_id=st.sampled_from([None, "", "v1", "v2"]),
    etag=st.sampled_from([None, "", "e1", "e2"]),
    sequencer=st.sampled_from([None, "", "0A", "0B", "ff", "Happy Sequencer"]),
)


@given(event=versions, stored=st.none() | versions)
def test_where_the_get_overlaps_the_head_the_plan_reads_the_current_object(
    event: Version, stored: Version | None
) -> None:
    if _plan_ignores_result(event):
        assert plan(event, stored) is Plan.UNORDERED


@given(event=versions)
def test_everywhere_else_some_stored_result_makes_the_get_unnecessary(event: Version) -> None:
    if not _plan_ignores_result(event):
        # The same version (a duplicate), or a much later event (this one is stale).
        later = Version("other", "other", "F" * 32)  # the longest S3-shaped sequencer
        assert {plan(event, event), plan(event, later)} & {Plan.DUPLICATE, Plan.STALE}


def timeline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``sent HeadObject``, ``answered HeadObject``, ... for the handler's clients, in order."""
    events: list[str] = []
    lock = threading.Lock()

    def install(client: S3Client) -> None:
        def note(what: str) -> Any:
            def handler(event_name: str, **_: Any) -> None:
                with lock:
                    events.append(f"{what} {event_name.rsplit('.', 1)[1]}")

            return handler

        client.meta.events.register("before-send.s3", note("sent"))
        client.meta.events.register("after-call.s3", note("answered"))

    on_handler_clients(monkeypatch, install)
    return events


def hold_head_until_get_is_sent(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Hold each HEAD's request back until a GET has been sent (at most 5 s): only a GET that
    does not wait for the HEAD gets through in time. Returns whether each HEAD saw it."""
    get_sent = threading.Event()
    saw: list[bool] = []

    def install(client: S3Client) -> None:
        def before_send(event_name: str, **_: Any) -> None:
            if event_name.endswith("GetObject"):
                get_sent.set()
            elif event_name.endswith("HeadObject"):
                saw.append(get_sent.wait(timeout=5))

        client.meta.events.register("before-send.s3", before_send)

    on_handler_clients(monkeypatch, install)
    return saw


@pytest.mark.timeout(60)
def test_a_batch_task_sends_its_get_without_waiting_for_the_head(
    s3: S3Client, context: LocalContext, s3_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"products": [{"price": 2.5}]}')
    saw = hold_head_until_get_is_sent(monkeypatch)

    answer = lambda_handler(batch_event(KEY), context)

    assert answer["results"][0]["resultCode"] == "Succeeded"
    assert saw == [True, True]  # the second: the look at the key after the PUT (r4)
    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]  # the same four
    assert str(read_result(s3, RESULT)["total"]) == "2.5"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("versioning", [False, True], ids=["unversioned", "versioned"])
def test_a_notification_whose_result_is_unknown_sends_its_get_without_waiting(
    s3: S3Client,
    context: LocalContext,
    s3_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    versioning: bool,
) -> None:
    if versioning:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = upload(s3, KEY, b'{"products": [{"price": 4}]}', sequencer="0A")
    saw = hold_head_until_get_is_sent(monkeypatch)

    assert lambda_handler(event, context)["records"][0]["status"] == "ok"

    assert saw == [True, True]  # the second: the look at the key after the PUT (r4)
    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]
    assert str(read_result(s3, RESULT)["total"]) == "4"


def test_a_notification_the_known_result_would_stop_sends_its_get_only_after_the_head(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = upload(s3, KEY, b'{"products": []}', sequencer="0A")
    lambda_handler(event, context)  # the container now knows this version's result
    s3.delete_object(Bucket=BUCKET, Key=RESULT)  # behind its back: the HEAD lets it through
    events = timeline(monkeypatch)

    lambda_handler(event, context)

    assert events == [
        "sent HeadObject",
        "answered HeadObject",
        "sent GetObject",
        "answered GetObject",
        "sent PutObject",
        "answered PutObject",
        "sent HeadObject",  # contract r4: the look at the key, once the PUT has landed
        "answered HeadObject",
    ]


def test_a_batch_task_for_a_deleted_object_is_still_a_permanent_failure(
    s3: S3Client, context: LocalContext
) -> None:
    result = lambda_handler(batch_event(KEY), context)["results"][0]
    assert (result["resultCode"], result["resultString"]) == (
        "PermanentFailure",
        "skipped: SourceDeleted",
    )


def fail_with_500(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    """Every ``operation`` request of the handler's clients is answered 500 InternalError."""

    def install(client: S3Client) -> None:
        fault = error_status(500, "InternalError")

        def before_send(request: Any, event_name: str, **_: Any) -> Any:
            return fault(request) if event_name.endswith(operation) else None

        client.meta.events.register_first("before-send.s3", before_send)

    on_handler_clients(monkeypatch, install)


@pytest.mark.usefixtures("backoffs")
def test_a_failing_head_wins_over_the_get_it_overlapped(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch, closed: list[bool]
) -> None:
    server_s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"products": []}')
    fail_with_500(monkeypatch, "HeadObject")

    result = lambda_handler(batch_event(KEY), context)["results"][0]

    assert result["resultCode"] == "TemporaryFailure"
    assert "HeadObject operation" in result["resultString"]
    assert closed == [True]  # the GET's body was not left open
    assert "Contents" not in server_s3.list_objects_v2(Bucket=BUCKET, Prefix=RESULT)


def test_deletions_cost_what_the_budget_allows(
    versioned: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    """Contract r4: a withdrawal 4 requests, a promotion 5 (each with the look at the key after
    its write); a late deletion 2 (the key confirms what sequencers say)."""
    events = [upload_price(versioned, price, f"0{price}", KEY) for price in (1, 2, 3)]
    for event in events:
        lambda_handler(event, context)
    versions = [e["Records"][0]["s3"]["object"]["versionId"] for e in events]

    def cost(event: dict[str, Any]) -> tuple[str, list[str]]:
        s3_calls.clear()
        record = lambda_handler(event, context)["records"][0]
        return record.get("reason", record["status"]), list(s3_calls)

    late = delete_event(BUCKET, KEY, sequencer="01F")
    assert cost(late) == ("DeletionIsLate", ["HeadObject", "HeadObject"])
    noncurrent = delete(versioned, KEY, version_id=versions[0], sequencer="04")
    assert cost(noncurrent) == ("KeyHasCurrentObject", ["HeadObject", "HeadObject"])
    current = delete(versioned, KEY, version_id=versions[2], sequencer="05")
    assert cost(current) == (
        "ok",
        ["HeadObject", "HeadObject", "GetObject", "PutObject", "HeadObject"],
    )
    marker = delete(versioned, KEY, sequencer="06")
    assert cost(marker) == (
        "withdrawn",
        ["HeadObject", "HeadObject", "DeleteObject", "HeadObject"],
    )


# The request table -----------------------------------------------------------------------------


def prepare(kind: str, s3: S3Client, context: LocalContext) -> dict[str, Any]:
    """The event of one row of the table, after what makes it that kind of record (each upload
    another version of the key, each sequencer later than the one before)."""
    first = put(s3, 1, "0A", key=KEY)
    if kind == "fresh":
        return first
    run(first, context)
    if kind == "duplicate":
        return first
    second = put(s3, 2, "0B", key=KEY)
    if kind == "update":
        return second
    if kind == "stale":
        put(s3, 3, "0C", key=KEY)  # overwrites the version the event names, before it ran
        return second
    run(second, context)
    return first  # superseded: older than the event already processed


#: Contract r4 changed this table: every write is followed by a look at the key (HEAD), and a
#: superseded record the container knows is confirmed by its GET before it stops.
TABLE = [
    # kind, container knows the result, requests, outcome
    ("fresh", False, ["HeadObject", "GetObject", "PutObject", "HeadObject"], "ok"),
    ("duplicate", True, ["HeadObject"], "ResultUpToDate"),
    ("duplicate", False, ["HeadObject", "GetObject"], "ResultUpToDate"),
    ("stale", True, ["GetObject"], "SourceChanged"),
    ("stale", False, ["HeadObject", "GetObject"], "SourceChanged"),
    ("update", True, ["GetObject", "PutObject", "HeadObject"], "ok"),
    ("update", False, ["HeadObject", "GetObject", "PutObject", "HeadObject"], "ok"),
    ("superseded", True, ["HeadObject", "GetObject"], "ResultUpToDate"),
    ("superseded", False, ["HeadObject", "GetObject"], "ResultUpToDate"),
]


@pytest.mark.parametrize(
    ("kind", "knows", "requests", "outcome"),
    TABLE,
    ids=[f"{kind}-{'known' if knows else 'unknown'}" for kind, knows, *_ in TABLE],
)
def test_the_requests_of_each_kind_of_record(
    s3: S3Client,
    context: LocalContext,
    s3_calls: list[str],
    *,
    kind: str,
    knows: bool,
    requests: list[str],
    outcome: str,
) -> None:
    event = prepare(kind, s3, context)
    if not knows:
        KNOWN.clear()  # a cold container, or one that never saw this result
    s3_calls.clear()

    record = run(event, context)

    assert s3_calls == requests
    assert record.get("reason", record["status"]) == outcome


@pytest.fixture
def bodies_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes botocore's streaming bodies were asked to read, in order."""
    sizes: list[int] = []
    read = StreamingBody.read

    def counting(self: StreamingBody, amt: int | None = None) -> bytes:
        sizes.append(-1 if amt is None else amt)
        return read(self, amt)

    monkeypatch.setattr(StreamingBody, "read", counting)
    return sizes


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per source the handler closed."""
    closes: list[bool] = []
    close = storage.InputObject.close

    def tracking_close(self: storage.InputObject) -> None:
        closes.append(True)
        close(self)

    monkeypatch.setattr(storage.InputObject, "close", tracking_close)
    return closes


@pytest.mark.parametrize("kind", ["duplicate", "superseded"])
def test_a_record_the_head_stops_closes_its_get_unread(
    s3: S3Client,
    context: LocalContext,
    s3_calls: list[str],
    *,
    bodies_read: list[int],
    closed: list[bool],
    kind: str,
) -> None:
    event = prepare(kind, s3, context)
    before = read_result(s3, RESULT)
    KNOWN.clear()
    s3_calls.clear()
    bodies_read.clear()
    closed.clear()

    assert run(event, context)["reason"] == "ResultUpToDate"

    if kind == "duplicate":  # the superseded record's GET is refused (its ETag is old)
        assert closed == [True]
    assert bodies_read == []
    assert s3_calls == ["HeadObject", "GetObject"]
    assert read_result(s3, RESULT) == before  # not rewritten


def test_where_sequencers_order_nothing_the_one_get_reads_the_current_version(
    versioned: S3Client, context: LocalContext, s3_calls: list[str], closed: list[bool]
) -> None:
    # LocalStack sends one sequencer with every event: equal sequencers order nothing, so the
    # key's current object decides. Every create reads the current object checked against the
    # version its event names, so the GET sent beside the HEAD is the one needed either way.
    run(put(versioned, 1, "0055AED6DCD90281E5", key=KEY), context)
    event = put(versioned, 2, "0055AED6DCD90281E5", key=KEY)
    KNOWN.clear()
    s3_calls.clear()
    closed.clear()

    assert run(event, context)["status"] == "ok"

    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]
    assert len(closed) == 1  # the one GET, once read
    result = read_result(versioned, RESULT)
    assert result["total"] == 2
    assert result["source"]["version_id"] == event["Records"][0]["s3"]["object"]["versionId"]


@pytest.mark.usefixtures("backoffs")
@pytest.mark.parametrize("failing", ["HeadObject", "GetObject"])
def test_a_duplicate_is_skipped_whatever_its_get_met_and_a_failing_head_wins(
    server_s3: S3Client,
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
    closed: list[bool],
    failing: str,
) -> None:
    event = upload(server_s3, KEY, b'{"products": []}', sequencer="0A")
    assert run(event, context)["status"] == "ok"
    KNOWN.clear()
    closed.clear()
    fail_with_500(monkeypatch, failing)

    if failing == "GetObject":  # as if the HEAD had gone alone: the GET is never needed
        assert run(event, context)["reason"] == "ResultUpToDate"
        assert closed == []
    else:
        with pytest.raises(RecordsFailed, match="HeadObject operation"):
            run(event, context)
        assert closed == [True]  # the GET's body was not left open


pytest_plugins = ["tests.harness"]
