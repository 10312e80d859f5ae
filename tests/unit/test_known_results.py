"""A warm container remembers the results it read and wrote (``handler.result_store``), and
leaves out the HEAD where what it remembers lets a record through. These tests pin that it only
ever saves requests: what it remembers never stops a record, a stale memory costs a failed
conditional PUT and never a wrong result, and the request budget of docs/behaviour.md holds."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from handler import result_store, storage
from handler.result_store import KNOWN, UNKNOWN, KnownResults
from handler.rules.ordering import Version
from handler.storage import StoredResult
from tests.support import BUCKET, read_result
from tests.support import first_record as run
from tests.support import upload_price as put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

KEY = "market_a/market_infos.json"
RESULT = "market_a/total_price.json"


def stored(etag: str) -> StoredResult:
    return StoredResult(etag=etag, sequencer=None, source_digest=None)


# The memory itself ---------------------------------------------------------------------------


def test_nothing_is_known_until_remembered_and_absence_is_knowledge() -> None:
    known = KnownResults()
    where = ("http://s3", "b", "k")
    assert known.get(where) is UNKNOWN
    known.remember(where, None)
    assert known.get(where) is None
    known.remember(where, stored('"e1"'))
    assert known.get(where) == stored('"e1"')
    known.clear()
    assert known.get(where) is UNKNOWN


def test_the_least_recently_used_result_is_forgotten_first() -> None:
    known = KnownResults(capacity=2)
    a, b, c = (("http://s3", "b", k) for k in "abc")
    known.remember(a, stored("a"))
    known.remember(b, stored("b"))
    assert known.get(a) == stored("a")  # a is now the most recently used
    known.remember(c, stored("c"))
    assert len(known) == 2
    assert (known.get(a), known.get(b), known.get(c)) == (stored("a"), UNKNOWN, stored("c"))


def test_remembering_a_result_again_makes_it_the_most_recently_used() -> None:
    known = KnownResults(capacity=2)
    a, b, c = (("http://s3", "b", k) for k in "abc")
    known.remember(a, stored("a1"))
    known.remember(b, stored("b"))
    known.remember(a, stored("a2"))  # a written again: now b is the oldest
    known.remember(c, stored("c"))
    assert (known.get(a), known.get(b), known.get(c)) == (stored("a2"), UNKNOWN, stored("c"))


def test_threads_remembering_at_once_keep_it_within_its_capacity() -> None:
    known = KnownResults(capacity=50)

    def remember(thread: int) -> None:
        for i in range(500):
            known.remember(("http://s3", "b", f"{thread}-{i}"), None)
            known.get(("http://s3", "b", f"{thread}-{i // 2}"))

    threads = [threading.Thread(target=remember, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(known) == 50


# Through the handler --------------------------------------------------------------------------


def test_an_update_of_a_result_this_container_wrote_leaves_out_the_head(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    run(put(s3, 1, "0A"), context)
    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]  # nothing known yet
    s3_calls.clear()

    assert run(put(s3, 2, "0B"), context)["status"] == "ok"

    assert s3_calls == ["GetObject", "PutObject", "HeadObject"]  # r4: the look after the PUT
    assert read_result(s3, RESULT)["total"] == 2


def test_events_without_an_ordering_sequencer_leave_out_the_head_too(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    run(put(s3, 1, "Happy Sequencer"), context)
    s3_calls.clear()

    assert run(put(s3, 2, "Happy Sequencer"), context)["status"] == "ok"

    assert s3_calls == ["GetObject", "PutObject", "HeadObject"]  # r4: the look after the PUT
    assert read_result(s3, RESULT)["total"] == 2


@pytest.mark.parametrize("sequencer", ["0A", None], ids=["ordering sequencer", "none"])
def test_what_is_remembered_never_stops_a_record_on_its_own(
    s3: S3Client, context: LocalContext, s3_calls: list[str], sequencer: str | None
) -> None:
    event = put(s3, 1, sequencer)
    run(event, context)
    s3.delete_object(Bucket=BUCKET, Key=RESULT)  # by hand, behind the container's back
    s3_calls.clear()

    # Remembered: this very version's result. The HEAD is made all the same, and finds none.
    assert run(event, context)["status"] == "ok"

    assert s3_calls[0] == "HeadObject"
    assert read_result(s3, RESULT)["total"] == 1


def test_a_duplicate_costs_one_head_as_before(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    event = put(s3, 1, "0A")
    run(event, context)
    s3_calls.clear()

    assert run(event, context)["reason"] == "ResultUpToDate"
    assert s3_calls == ["HeadObject"]


def other_container(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the handler as another container would: with a memory of its own."""

    def invoke(event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
        with monkeypatch.context() as patch:
            patch.setattr(result_store, "KNOWN", KnownResults())
            return run(event, context)

    return invoke


#: A PUT on remembered state refused; the result and the key looked at (the object read is still
#: current), the PUT again over what is there, and (contract r4) the look at the key after it.
RETRIED_WRITE = ["GetObject", "PutObject", "HeadObject", "HeadObject", "PutObject", "HeadObject"]


def later_result_elsewhere(s3: S3Client, sequencer: str) -> None:
    """The result another container wrote meanwhile from a later event of ``KEY`` (its upload's
    object is not needed: only the result's metadata orders it)."""
    storage.write_result(
        s3,
        BUCKET,
        RESULT,
        b'{"status": "ok", "total": 3}',
        source_key=KEY,
        source=Version("elsewhere", "e" * 32, sequencer),
        replaces=storage.stored_result(s3, BUCKET, RESULT),
    )


def test_a_later_sequencer_written_since_does_not_win_over_the_current_object(
    versioned: S3Client,
    context: LocalContext,
    s3_calls: list[str],
) -> None:
    # Contract r4 changed this test: a result of a later sequencer once stopped the record;
    # now the key's current object decides, and the result written since names another version.
    s3 = versioned
    run(put(s3, 1, "0A"), context)
    middle = put(s3, 2, "0B")
    later_result_elsewhere(s3, "0C")
    s3_calls.clear()

    # This container still remembers the result of 0A: it reads 0B, and its PUT is refused;
    # it looks at the result and the key (0B is current), writes again, and looks once more.
    assert run(middle, context)["status"] == "ok"

    assert s3_calls == RETRIED_WRITE
    assert read_result(s3, RESULT)["total"] == 2
    # What it now knows is its own result: a duplicate stops after the HEAD alone.
    s3_calls.clear()
    assert run(middle, context)["reason"] == "ResultUpToDate"
    assert s3_calls == ["HeadObject"]


def test_a_result_another_container_wrote_since_is_replaced_when_it_is_earlier(
    versioned: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = versioned
    run(put(s3, 1, "0A"), context)
    middle = put(s3, 2, "0B")
    assert other_container(monkeypatch)(middle, context)["status"] == "ok"
    last = put(s3, 3, "0C")

    assert run(last, context)["status"] == "ok"  # a refused PUT, a HEAD, and a PUT again

    result = read_result(s3, RESULT)
    assert (result["total"], result["source"]["sequencer"]) == (3, "0C")


def test_a_result_deleted_since_it_was_remembered_is_written_again(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    run(put(s3, 1, "0A"), context)
    s3.delete_object(Bucket=BUCKET, Key=RESULT)
    s3_calls.clear()

    assert run(put(s3, 2, "0B"), context)["status"] == "ok"

    # The PUT conditional on the remembered ETag finds no result, so the record looks again:
    # at the result, and at the key (a result gone may have been withdrawn for a deletion).
    # And, contract r4, the look at the key after the PUT has landed.
    assert s3_calls == RETRIED_WRITE
    assert read_result(s3, RESULT)["total"] == 2


def test_a_result_remembered_absent_is_written_only_if_still_absent(
    versioned: S3Client,
    context: LocalContext,
    s3_calls: list[str],
) -> None:
    s3 = versioned
    gone = put(s3, 1, "0A")
    s3.delete_object(
        Bucket=BUCKET, Key=KEY, VersionId=gone["Records"][0]["s3"]["object"]["versionId"]
    )
    assert run(gone, context)["reason"] == "SourceDeleted"  # its HEAD found no result
    middle = put(s3, 2, "0B")
    later_result_elsewhere(s3, "0C")
    s3_calls.clear()

    # Remembered: no result. Its If-None-Match PUT is refused; the result there names another
    # version than the key's current one, so (contract r4) it is replaced, over its ETag.
    assert run(middle, context)["status"] == "ok"

    assert s3_calls == RETRIED_WRITE
    assert read_result(s3, RESULT)["total"] == 2


def test_results_are_remembered_per_endpoint_bucket_and_key(
    s3: S3Client, context: LocalContext
) -> None:
    run(put(s3, 1, "0A"), context)

    endpoint = s3.meta.endpoint_url
    remembered = KNOWN.get((endpoint, BUCKET, RESULT))
    assert isinstance(remembered, StoredResult)
    assert remembered.etag == s3.head_object(Bucket=BUCKET, Key=RESULT)["ETag"]
    assert remembered.sequencer == "0A"
    assert KNOWN.get(("http://elsewhere", BUCKET, RESULT)) is UNKNOWN
    assert KNOWN.get((endpoint, BUCKET, KEY)) is UNKNOWN
