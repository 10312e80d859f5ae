"""Ordering and duplicates (docs/behaviour.md): at-least-once, out-of-order delivery, superseded
objects, versioned buckets, and the conditional write that settles a race."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import pytest

from handler import storage
from handler.app import RecordsFailed, lambda_handler
from handler.storage import SEQUENCER_META
from tests.faults import FaultInjector, error_status, on_handler_clients
from tests.support import BUCKET, read_result, upload
from tests.support import first_record as run
from tests.support import upload_price as put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

pytest_plugins = ["tests.harness"]

KEY = "market_a/market_infos.json"
RESULT = "market_a/total_price.json"


def test_fresh_record_takes_four_requests(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    run(put(s3, 1, "0A"), context)
    # Contract r4: the look at the key after the PUT has landed (docs/behaviour.md, "Convergence").
    assert s3_calls == ["HeadObject", "GetObject", "PutObject", "HeadObject"]


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

    # Our PUT got 412, we looked again: the later sequencer's result names no version of the
    # key, and our version is still its current object, so ours is written (contract r4: the
    # key's current object is the truth; a sequencer only saves requests).
    assert run(event, context)["status"] == "ok"

    assert raced == [1]
    assert read_result(s3, RESULT)["total"] == 1


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
    def always_conflict(*_: Any, **__: Any) -> None:
        raise storage.ResultConflict(RESULT)

    monkeypatch.setattr(storage, "write_result", always_conflict)
    with pytest.raises(RecordsFailed, match="ResultConflict"):
        run(put(s3, 1, "0A"), context)


# --- a rival result between our check and our write ---------------------------------------------
# The conditional write fails, and whether ours may still replace theirs depends on whether the
# version we read is still the key's current object. The rival write is made from a hook on the
# handler's own client, just before its PutObject.

RIVAL = b'{"status": "ok", "total": 99}'
RIVAL_DOC = b'{"products": [{"price": 1.25}, {"price": 2}]}'


def before_first_put(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run ``action`` once, just before the handler's first PutObject is sent."""
    make_client = storage.new_client
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    def client_with_hook() -> S3Client:
        client = make_client()
        client.meta.events.register("before-parameter-build.s3.PutObject", hook)
        return client

    monkeypatch.setattr(storage, "new_client", client_with_hook)


def rival_result(s3: S3Client, *, version_id: str | None = None) -> None:
    """The result another invocation wrote from another version of ``KEY``, naming no
    sequencer (so sequencers cannot order it against ours)."""
    metadata = {
        storage.SOURCE_KEY_META: storage.key_digest(KEY),
        storage.ETAG_META: "0" * 32,
    }
    if version_id is not None:
        metadata[storage.VERSION_META] = version_id
    s3.put_object(Bucket=BUCKET, Key=RESULT, Body=RIVAL, Metadata=metadata)


def test_ours_replaces_a_rival_while_our_version_is_still_current(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = upload(s3, KEY, RIVAL_DOC, sequencer="0A")
    before_first_put(monkeypatch, lambda: rival_result(s3))

    summary = lambda_handler(event, context)

    assert summary["records"][0]["status"] == "ok"
    result = read_result(s3, RESULT)
    assert result["total"] == 3.25
    assert result["source"]["sequencer"] == "0A"


def test_a_rival_stands_once_our_source_is_deleted(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = upload(s3, KEY, RIVAL_DOC, sequencer="0A")

    def rival_then_delete() -> None:
        rival_result(s3)
        s3.delete_object(Bucket=BUCKET, Key=KEY)

    before_first_put(monkeypatch, rival_then_delete)

    summary = lambda_handler(event, context)

    assert summary["records"][0] == {
        "bucket": BUCKET,
        "key": KEY,
        "status": "skipped",
        "reason": "SourceChanged",
    }
    assert s3.get_object(Bucket=BUCKET, Key=RESULT)["Body"].read() == RIVAL


@pytest.mark.usefixtures("versioned")
def test_a_rival_stands_once_the_same_bytes_are_a_newer_version(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same bytes uploaded again are a new version (same ETag, new version id): the version
    # we read is no longer current, so the rival's result may come from the newer one.
    event = upload(s3, KEY, RIVAL_DOC, sequencer="0A")

    def rival_then_reupload() -> None:
        rival_result(s3, version_id="another-version")
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=RIVAL_DOC)

    before_first_put(monkeypatch, rival_then_reupload)

    summary = lambda_handler(event, context)

    assert summary["records"][0]["status"] == "skipped"
    assert summary["records"][0]["reason"] == "SourceChanged"
    assert s3.get_object(Bucket=BUCKET, Key=RESULT)["Body"].read() == RIVAL


def test_a_put_refused_for_another_reason_is_raised_not_taken_for_a_conflict(
    s3: S3Client, context: LocalContext, faults: FaultInjector
) -> None:
    # A result exists (so the write is conditional on its ETag), and the PUT is denied.
    lambda_handler(upload(s3, KEY, RIVAL_DOC, sequencer="0A"), context)
    faults.attempts.clear()
    faults.always("PutObject", error_status(403, "AccessDenied"))

    with pytest.raises(RecordsFailed, match="AccessDenied"):
        lambda_handler(upload(s3, KEY, RIVAL_DOC + b" ", sequencer="0B"), context)

    assert faults.attempts["PutObject", RESULT] == 1  # not tried again as if it were a conflict


def test_a_result_that_changes_at_every_write_fails_the_record_saying_so(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    rivals: list[int] = []

    def rival_before_every_put(**_: Any) -> None:
        rivals.append(1)
        # Another version's result (which ours may replace), new bytes each time: a new ETag.
        s3.put_object(
            Bucket=BUCKET,
            Key=RESULT,
            Body=RIVAL + b" " * len(rivals),
            Metadata={storage.SOURCE_KEY_META: storage.key_digest(KEY)},
        )

    on_handler_clients(
        monkeypatch,
        lambda client: client.meta.events.register(
            "before-parameter-build.s3.PutObject", rival_before_every_put
        ),
    )

    with pytest.raises(RecordsFailed, match=f"{RESULT} changed on each of 5 writes"):
        lambda_handler(upload(s3, KEY, RIVAL_DOC, sequencer="0A"), context)

    assert len(rivals) == 5


@pytest.mark.usefixtures("versioned")
def test_the_same_bytes_in_a_new_version_are_totalled_again_from_that_version(
    s3: S3Client, context: LocalContext
) -> None:
    # In a versioned bucket the result names the version it was read from; a new version with
    # the same bytes (same ETag) is a new source, so its later event rewrites the result.
    key = "v/market_infos.json"
    first = upload(s3, key, RIVAL_DOC, sequencer="0A")
    assert lambda_handler(first, context)["records"][0]["status"] == "ok"
    second = upload(s3, key, RIVAL_DOC, sequencer="0B")
    version = second["Records"][0]["s3"]["object"]["versionId"]
    assert version != first["Records"][0]["s3"]["object"]["versionId"]

    summary = lambda_handler(second, context)

    assert summary["records"][0]["status"] == "ok"
    result = read_result(s3, "v/total_price.json")
    assert result["source"]["version_id"] == version
    assert result["source"]["sequencer"] == "0B"


def test_a_sequencer_that_cannot_order_is_not_stored_with_the_result(
    s3: S3Client, context: LocalContext
) -> None:
    event = upload(s3, "m/market_infos.json", b'{"products": []}', sequencer="Happy Sequencer")

    assert lambda_handler(event, context)["records"][0]["status"] == "ok"

    metadata = s3.head_object(Bucket=BUCKET, Key="m/total_price.json")["Metadata"]
    assert "source-sequencer" not in metadata
    assert set(metadata) == {"source-key-sha256", "source-etag"}


# --- which version a result names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answered", "recorded"),
    [(None, None), ("", None), ("null", None), ("3HL4kqtJlcpXroDTDmJ", "3HL4kqtJlcpXroDTDmJ")],
    ids=["absent", "empty", "null (an unversioned object)", "a version id"],
)
def test_a_source_s_version_id_null_means_no_version(
    answered: str | None, recorded: str | None
) -> None:
    response: dict[str, Any] = {"Body": io.BytesIO(b""), "ContentLength": 0, "ETag": '"e"'}
    if answered is not None:
        response["VersionId"] = answered
    assert storage.InputObject(cast("Any", response)).version_id == recorded


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


# --- no event can freeze a key (contract r4) -----------------------------------------------------


def forged(sequencer: str) -> dict[str, Any]:
    """What anyone allowed to send to the queue can make: a key, no ETag, no version."""
    from localrun.invoke import put_event

    event = put_event(BUCKET, KEY, etag="", size=0, sequencer=sequencer)
    del event["Records"][0]["s3"]["object"]["eTag"]
    return event


@pytest.mark.parametrize("bucket_kind", ["unversioned", "versioned"])
def test_a_forged_sequencer_does_not_freeze_the_key(
    s3: S3Client, context: LocalContext, bucket_kind: str
) -> None:
    from localrun.invoke import delete_and_tell

    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    run(put(s3, 1, "0A"), context)
    run(forged("F"), context)  # rewrites the result with the greatest sequencer there is
    assert s3.head_object(Bucket=BUCKET, Key=RESULT)["Metadata"][SEQUENCER_META] == "F"

    # The next genuine upload's event totals it, though its sequencer is "earlier".
    assert run(put(s3, 2, "0B"), context)["status"] == "ok"
    assert read_result(s3, RESULT)["total"] == 2
    run(forged("F"), context)
    # And a genuine deletion withdraws it.
    deletion = delete_and_tell(s3, BUCKET, KEY, sequencer="0C")
    assert run(deletion, context)["status"] == "withdrawn"


def test_a_sequencer_not_in_s3s_form_is_treated_as_absent(
    s3: S3Client, context: LocalContext
) -> None:
    # 4,001 digits: S3 refuses metadata over 2 KB, so storing it made the PUT fail forever.
    assert run(put(s3, 1, "1" * 4001), context)["status"] == "ok"
    assert SEQUENCER_META not in s3.head_object(Bucket=BUCKET, Key=RESULT)["Metadata"]
    assert read_result(s3, RESULT)["total"] == 1
