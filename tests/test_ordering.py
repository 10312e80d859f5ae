"""Ordering and duplicates (docs/behaviour.md): at-least-once, out-of-order delivery, superseded
objects, versioned buckets, and the conditional write that settles a race."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from handler.storage import SEQUENCER_META
from support import BUCKET, read_result
from support import first_record as run
from support import upload_price as put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from local_invoke import LocalContext

KEY = "market_a/market_infos.json"
RESULT = "market_a/total_price.json"


def test_fresh_record_takes_three_requests(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    run(put(s3, 1, "0A"), context)
    assert s3_calls == ["HeadObject", "GetObject", "PutObject"]


def test_duplicate_event_does_not_rewrite_the_result(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    event = put(s3, 1, "0A")
    run(event, context)
    first = s3.head_object(Bucket=BUCKET, Key=RESULT)
    s3_calls.clear()

    assert run(event, context) == {
        "bucket": BUCKET,
        "key": KEY,
        "status": "skipped",
        "reason": "ResultUpToDate",
    }
    assert s3_calls == ["HeadObject"]  # one request for a duplicate
    again = s3.head_object(Bucket=BUCKET, Key=RESULT)
    assert (again["ETag"], again["LastModified"]) == (first["ETag"], first["LastModified"])


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0062A1B2C3D4E5F601", "0062A1B2C3D4E5F602"),
        # Different lengths: the shorter is right-padded with zeros (FF00 > 0100).
        ("0100", "FF"),
        ("0000000010", "F"),
    ],
)
def test_out_of_order_events_keep_the_later_result(
    versioned: S3Client, context: LocalContext, older: str, newer: str
) -> None:
    old_event = put(versioned, 1, older)
    new_event = put(versioned, 2, newer)

    assert run(new_event, context)["status"] == "ok"
    assert run(old_event, context)["reason"] == "ResultUpToDate"

    result = read_result(versioned, RESULT)
    assert (result["total"], result["source"]["sequencer"]) == (2, newer)
    assert result["source"]["version_id"] == new_event["Records"][0]["s3"]["object"]["versionId"]


def test_in_order_events_replace_the_result(versioned: S3Client, context: LocalContext) -> None:
    old_event = put(versioned, 1, "0100")
    new_event = put(versioned, 2, "0101")
    run(old_event, context)
    run(new_event, context)
    assert read_result(versioned, RESULT)["total"] == 2


def test_versioned_bucket_reads_the_version_named_only_while_it_is_current(
    versioned: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    first = put(versioned, 1, "01")
    second = put(versioned, 2, "02")  # a newer version exists, its event not delivered yet

    # The older version is still readable by its id, but it is no longer the key's object:
    # the newer upload's own event totals the key (one GET, abandoned, as in an unversioned
    # bucket's If-Match).
    assert run(first, context)["reason"] == "SourceChanged"
    assert s3_calls == ["HeadObject", "GetObject"]
    assert run(second, context)["status"] == "ok"

    result = read_result(versioned, RESULT)
    assert result["total"] == 2
    assert result["source"]["version_id"] == second["Records"][0]["s3"]["object"]["versionId"]


def test_deleted_version_is_skipped(versioned: S3Client, context: LocalContext) -> None:
    event = put(versioned, 1, "01")
    version = event["Records"][0]["s3"]["object"]["versionId"]
    versioned.delete_object(Bucket=BUCKET, Key=KEY, VersionId=version)

    assert run(event, context)["reason"] == "SourceDeleted"
    assert versioned.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_overwritten_object_in_unversioned_bucket_is_skipped(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    stale = put(s3, 1, "01")
    put(s3, 2, "02")  # overwrites: the first event's ETag no longer matches

    assert run(stale, context)["reason"] == "SourceChanged"
    assert s3_calls == ["HeadObject", "GetObject"]
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1  # no result written


def test_deleted_object_in_unversioned_bucket_is_skipped(
    s3: S3Client, context: LocalContext
) -> None:
    event = put(s3, 1, "01")
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    assert run(event, context)["reason"] == "SourceDeleted"


def _write_between_check_and_write(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, sequencer: str
) -> list[int]:
    """Make another writer store a result (with ``sequencer``) after the handler's HEAD and
    before its first PUT: the race the conditional write exists for."""
    from handler import storage

    make_client = storage.new_client
    raced: list[int] = []

    def racing_client() -> S3Client:
        client = make_client()

        def other_writer(**_: Any) -> None:
            if not raced:
                raced.append(1)
                s3.put_object(
                    Bucket=BUCKET,
                    Key=RESULT,
                    Body=b'{"status": "ok", "total": 999}',
                    Metadata={
                        SEQUENCER_META: sequencer,
                        storage.SOURCE_KEY_META: storage.key_digest(KEY),
                    },
                )

        client.meta.events.register("before-call.s3.PutObject", other_writer)
        return client

    monkeypatch.setattr(storage, "new_client", racing_client)
    return raced


def test_race_lost_to_a_later_writer_leaves_its_result(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, 1, "0A")
    raced = _write_between_check_and_write(s3, monkeypatch, sequencer="0B")

    assert run(event, context)["reason"] == "ResultUpToDate"  # our PUT got 412, we looked again

    assert raced == [1]
    assert read_result(s3, RESULT)["total"] == 999  # the later writer's result stands


def test_race_against_an_earlier_writer_is_retried_and_won(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, 1, "0A")
    raced = _write_between_check_and_write(s3, monkeypatch, sequencer="09")

    assert run(event, context)["status"] == "ok"

    assert raced == [1]
    result = read_result(s3, RESULT)
    assert (result["total"], result["source"]["sequencer"]) == (1, "0A")


def test_race_that_never_settles_is_raised(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler import storage
    from handler.app import RecordsFailed

    def always_conflict(*_: Any, **__: Any) -> None:
        raise storage.ResultConflict(RESULT)

    monkeypatch.setattr(storage, "write_result", always_conflict)
    with pytest.raises(RecordsFailed, match="ResultConflict"):
        run(put(s3, 1, "0A"), context)


def test_event_without_sequencer_replaces_whatever_is_there(
    s3: S3Client, context: LocalContext
) -> None:
    run(put(s3, 1, "FFFFFFFF"), context)  # a result from a very late sequencer
    hand_made = put(s3, 2, sequencer=None)

    assert run(hand_made, context)["status"] == "ok"

    result = read_result(s3, RESULT)
    assert (result["total"], result["source"]["sequencer"]) == (2, None)
    head = s3.head_object(Bucket=BUCKET, Key=RESULT)
    assert SEQUENCER_META not in head["Metadata"]


def test_results_of_other_keys_are_not_compared(s3: S3Client, context: LocalContext) -> None:
    # x/a_market_infos.json and x/market_infos.json share x/total_price.json: their sequencers
    # belong to different keys and say nothing about each other's order.
    run(put(s3, 1, "FF", key="x/a_market_infos.json"), context)
    assert run(put(s3, 2, "01", key="x/market_infos.json"), context)["status"] == "ok"
    assert read_result(s3, "x/total_price.json")["total"] == 2
