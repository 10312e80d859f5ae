"""Which round trips overlap (``processing._plan_ignores_result``, ``docs/benchmarks.md``).

The GET may leave before the HEAD's answer only where that answer cannot stop it: events that
name no version id, no ETag and no ordering sequencer (S3 Batch Operations tasks) read the key's
current object whatever is stored. Everywhere else a duplicate or stale event must cost the
HEAD alone, so the GET waits for it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faults import error_status, on_handler_clients
from handler import storage
from handler.app import lambda_handler
from handler.ordering import Plan, Version, plan
from handler.processing import _plan_ignores_result
from local_invoke import delete_event
from support import BUCKET, batch_event, delete, read_result, upload, upload_price

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from local_invoke import LocalContext

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
        assert plan(event, stored) is Plan.READ_CURRENT


@given(event=versions)
def test_everywhere_else_some_stored_result_makes_the_get_unnecessary(event: Version) -> None:
    if not _plan_ignores_result(event):
        # The same version (a duplicate), or a much later event (this one is stale).
        later = Version("other", "other", "F" * 40)
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
    assert saw == [True]
    assert s3_calls == ["HeadObject", "GetObject", "PutObject"]  # the same three
    assert str(read_result(s3, RESULT)["total"]) == "2.5"


def test_a_notification_sends_its_get_only_after_the_head_answered(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = timeline(monkeypatch)
    lambda_handler(upload(s3, KEY, b'{"products": []}', sequencer="0A"), context)
    assert events == [
        "sent HeadObject",
        "answered HeadObject",
        "sent GetObject",
        "answered GetObject",
        "sent PutObject",
        "answered PutObject",
    ]


def test_a_batch_task_for_a_deleted_object_is_still_a_permanent_failure(
    s3: S3Client, context: LocalContext
) -> None:
    result = lambda_handler(batch_event(KEY), context)["results"][0]
    assert (result["resultCode"], result["resultString"]) == (
        "PermanentFailure",
        "skipped: SourceDeleted",
    )


@pytest.mark.usefixtures("backoffs")
def test_a_failing_head_wins_over_the_get_it_overlapped(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"products": []}')
    closed: list[bool] = []
    close = storage.SourceObject.close

    def tracking_close(self: storage.SourceObject) -> None:
        closed.append(True)
        close(self)

    monkeypatch.setattr(storage.SourceObject, "close", tracking_close)

    def install(client: S3Client) -> None:
        fault = error_status(500, "InternalError")

        def before_send(request: Any, event_name: str, **_: Any) -> Any:
            return fault(request) if event_name.endswith("HeadObject") else None

        client.meta.events.register_first("before-send.s3", before_send)

    on_handler_clients(monkeypatch, install)

    result = lambda_handler(batch_event(KEY), context)["results"][0]

    assert result["resultCode"] == "TemporaryFailure"
    assert "HeadObject operation" in result["resultString"]
    assert closed == [True]  # the GET's body was not left open
    assert "Contents" not in server_s3.list_objects_v2(Bucket=BUCKET, Prefix=RESULT)


def test_deletions_cost_what_the_budget_allows(
    versioned: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    """A withdrawal at most 3 requests; a promotion a fresh record's 3 plus one look at the
    key; a late deletion 1 where sequencers order it, 2 where the key's state decides."""
    events = [upload_price(versioned, price, f"0{price}", KEY) for price in (1, 2, 3)]
    for event in events:
        lambda_handler(event, context)
    versions = [e["Records"][0]["s3"]["object"]["versionId"] for e in events]

    def cost(event: dict[str, Any]) -> tuple[str, list[str]]:
        s3_calls.clear()
        record = lambda_handler(event, context)["records"][0]
        return record.get("reason", record["status"]), list(s3_calls)

    late = delete_event(BUCKET, KEY, sequencer="01F")
    assert cost(late) == ("DeletionIsLate", ["HeadObject"])
    noncurrent = delete(versioned, KEY, version_id=versions[0], sequencer="04")
    assert cost(noncurrent) == ("KeyHasCurrentObject", ["HeadObject", "HeadObject"])
    current = delete(versioned, KEY, version_id=versions[2], sequencer="05")
    assert cost(current) == ("ok", ["HeadObject", "HeadObject", "GetObject", "PutObject"])
    marker = delete(versioned, KEY, sequencer="06")
    assert cost(marker) == ("withdrawn", ["HeadObject", "HeadObject", "DeleteObject"])


pytest_plugins = ["harness"]
