"""Deletions (``handler.flows.deleted``, ``docs/behaviour.md``, "Deletions"): a result follows its
input out of existence, back to the previous version when the current one is removed, and is
never brought back by a late create event. Each case through ``lambda_handler`` on moto, with the
S3 requests it costs counted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from handler import storage
from handler.app import _result_string, lambda_handler
from handler.events import object_events
from handler.flows.created import process
from handler.flows.deleted import follow_deletion, withdraw_orphan
from handler.flows.recompute import MAX_LOOKS
from handler.outcomes import Outcome, Reason, Status
from handler.rules.settings import Settings
from tests.faults import error_status, on_handler_clients
from tests.support import (
    BUCKET,
    delete,
    load_event,
    read_result,
    upload,
    upload_price,
    version_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

KEY = "market_a/market_infos.json"
RESULT = "market_a/total_price.json"
#: A withdrawal: the result, the key, the conditional DELETE, and the look at the key after it
#: (contract r4: every write is followed by a look at the key).
WITHDRAWAL = ["HeadObject", "HeadObject", "DeleteObject", "HeadObject"]
PROMOTION = ["HeadObject", "HeadObject", "GetObject", "PutObject", "HeadObject"]


def run(event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
    record: dict[str, Any] = lambda_handler(event, context)["records"][0]
    return record


def has_result(client: S3Client) -> bool:
    return bool(client.list_objects_v2(Bucket=BUCKET, Prefix=RESULT)["KeyCount"])


def total(client: S3Client) -> Any:
    return read_result(client, RESULT)["total"]


@pytest.mark.parametrize("bucket_kind", ["unversioned", "versioned"])
def test_a_deleted_input_withdraws_its_result_in_four_requests(
    s3: S3Client, context: LocalContext, s3_calls: list[str], bucket_kind: str
) -> None:
    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    run(upload_price(s3, 500, "0A", KEY), context)
    deletion = delete(s3, KEY, sequencer="0B")
    expected = "DeleteMarkerCreated" if bucket_kind == "versioned" else "Delete"
    assert deletion["Records"][0]["eventName"] == f"ObjectRemoved:{expected}"
    s3_calls.clear()

    assert run(deletion, context) == {
        "bucket": BUCKET,
        "key": KEY,
        "status": "withdrawn",
        "result_key": RESULT,
    }
    assert s3_calls == WITHDRAWAL
    assert not has_result(s3)

    # Delivered again: nothing left to withdraw.
    s3_calls.clear()
    assert run(deletion, context)["reason"] == "NoResultToWithdraw"
    assert s3_calls == ["HeadObject", "HeadObject"]


def test_an_upload_after_a_withdrawal_is_written_without_asking(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    # The container remembers that it removed the result: the key's next upload is planned as a
    # fresh key's (GET and a create-only PUT), without the HEAD a stale memory would add back.
    run(upload_price(s3, 500, "0A", KEY), context)
    run(delete(s3, KEY, sequencer="0B"), context)
    again = upload_price(s3, 600, "0C", KEY)
    s3_calls.clear()

    assert run(again, context)["status"] == "ok"
    assert s3_calls == ["GetObject", "PutObject", "HeadObject"]  # the look after the write
    assert total(s3) == 600


@pytest.mark.parametrize("bucket_kind", ["unversioned", "versioned"])
def test_a_create_event_after_the_deletion_never_resurrects_the_total(
    s3: S3Client, context: LocalContext, s3_calls: list[str], bucket_kind: str
) -> None:
    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    created = upload_price(s3, 500, "0A", KEY)
    run(created, context)
    run(delete(s3, KEY, sequencer="0B"), context)
    s3_calls.clear()

    # Late, duplicated, or never processed before: the version may still be readable by its
    # id behind the delete marker, but it is not the key's object.
    assert run(created, context)["reason"] == Reason.SOURCE_DELETED
    # The GET finds no current object; the HEAD is left out where this container withdrew the
    # result itself (``handler.result_store``).
    assert s3_calls[-1] == "GetObject"
    assert "PutObject" not in s3_calls
    assert not has_result(s3)


def test_a_create_never_processed_before_its_deletion_writes_nothing(
    versioned: S3Client, context: LocalContext
) -> None:
    created = upload_price(versioned, 500, "0A", KEY)
    deletion = delete(versioned, KEY, sequencer="0B")

    assert run(deletion, context)["reason"] == "NoResultToWithdraw"
    assert run(created, context)["reason"] == Reason.SOURCE_DELETED
    assert not has_result(versioned)


def current_version_removed(
    versioned: S3Client, context: LocalContext
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Totals of 100 then 200, then the 200 version deleted: its create event, and the
    deletion's."""
    run(upload_price(versioned, 100, "0A", KEY), context)
    second = upload_price(versioned, 200, "0B", KEY)
    run(second, context)
    return second, delete(versioned, KEY, version_id=version_of(second), sequencer="0C")


def test_removing_the_current_version_promotes_the_previous_one(
    versioned: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    second, removal = current_version_removed(versioned, context)
    assert removal["Records"][0]["eventName"] == "ObjectRemoved:Delete"
    s3_calls.clear()

    assert run(removal, context) == {
        "bucket": BUCKET,
        "key": KEY,
        "status": "ok",
        "result_key": RESULT,
    }
    assert s3_calls == PROMOTION  # the two looks, GET, PUT, and the look after the PUT
    result = read_result(versioned, RESULT)
    assert (result["total"], result["source"]["sequencer"]) == (100, "0C")
    # It names the version it totalled, the one now current.
    current = versioned.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    assert result["source"]["version_id"] == current != version_of(second)

    # The removed version's create event, late: stale by the deletion's sequencer, confirmed
    # by its GET (contract r4: the version it names is not current, so a sequencer may stop it).
    s3_calls.clear()
    assert run(second, context)["reason"] == "ResultUpToDate"
    assert s3_calls == ["HeadObject", "GetObject"]
    assert total(versioned) == 100


def test_removing_a_delete_marker_brings_the_total_back(
    versioned: S3Client, context: LocalContext
) -> None:
    run(upload_price(versioned, 300, "0A", KEY), context)
    marker = delete(versioned, KEY, sequencer="0B")
    run(marker, context)
    assert not has_result(versioned)

    assert (
        run(delete(versioned, KEY, version_id=version_of(marker), sequencer="0C"), context)[
            "status"
        ]
        == "ok"
    )
    assert total(versioned) == 300


def test_deleting_a_noncurrent_version_changes_nothing(
    versioned: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    first = upload_price(versioned, 100, "0A", KEY)
    run(first, context)
    run(upload_price(versioned, 200, "0B", KEY), context)
    written = versioned.head_object(Bucket=BUCKET, Key=RESULT)["ETag"]
    s3_calls.clear()

    deletion = delete(versioned, KEY, version_id=version_of(first), sequencer="0C")
    assert run(deletion, context)["reason"] == "KeyHasCurrentObject"
    assert s3_calls == ["HeadObject", "HeadObject"]
    assert versioned.head_object(Bucket=BUCKET, Key=RESULT)["ETag"] == written


@pytest.mark.parametrize(
    ("sequencers", "reason", "calls"),
    [
        (("0A", "0B", "0C"), "DeletionIsLate", 2),  # the key confirms what sequencers say
        # LocalStack's constant sequencer: the key's current object decides.
        (("0055AED6DCD90281E5",) * 3, "KeyHasCurrentObject", 2),
        (("Happy Sequencer",) * 3, "KeyHasCurrentObject", 2),
    ],
)
def test_a_late_deletion_leaves_the_newer_total_alone(
    s3: S3Client,
    context: LocalContext,
    s3_calls: list[str],
    *,
    sequencers: tuple[str, str, str],
    reason: str,
    calls: int,
) -> None:
    run(upload_price(s3, 100, sequencers[0], KEY), context)
    deletion = delete(s3, KEY, sequencer=sequencers[1])
    newer = upload_price(s3, 200, sequencers[2], KEY)
    assert run(newer, context)["status"] == "ok"
    s3_calls.clear()

    assert run(deletion, context)["reason"] == reason
    assert len(s3_calls) == calls
    assert total(s3) == 200


def test_a_deletion_ahead_of_the_newer_uploads_event_totals_the_current_object(
    s3: S3Client, context: LocalContext, s3_calls: list[str]
) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    deletion = delete(s3, KEY, sequencer="0B")
    newer = upload_price(s3, 200, "0C", KEY)

    assert run(deletion, context)["status"] == "ok"
    assert total(s3) == 200
    s3_calls.clear()
    assert run(newer, context)["reason"] == "ResultUpToDate"  # a duplicate now
    assert s3_calls == ["HeadObject"]


def test_a_result_of_another_input_of_the_folder_is_not_withdrawn(
    s3: S3Client, context: LocalContext
) -> None:
    other = "market_a/old_market_infos.json"  # the same result key
    run(upload(s3, other, b'{"products": [{"price": 7}]}', sequencer="0A"), context)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"products": []}')

    assert run(delete(s3, KEY, sequencer="0B"), context)["reason"] == "NoResultToWithdraw"
    assert read_result(s3, RESULT)["source"]["key"] == other


def test_a_deletion_of_another_key_is_not_an_input(s3: S3Client, context: LocalContext) -> None:
    s3.put_object(Bucket=BUCKET, Key="market_a/notes.txt", Body=b"x")
    assert run(delete(s3, "market_a/notes.txt"), context)["reason"] == "NotAnInputKey"


# --- races, made from hooks on the handler's own client ---------------------------------------


def before_first(
    monkeypatch: pytest.MonkeyPatch, operation: str, action: Callable[[], None], times: int = 1
) -> None:
    """Run ``action`` just before each of the handler's first ``times`` ``operation`` calls."""
    left = [times]

    def hook(**_: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            action()

    on_handler_clients(
        monkeypatch,
        lambda client: client.meta.events.register(f"before-parameter-build.s3.{operation}", hook),
    )


def rewrite_result(s3: S3Client) -> None:
    """Another invocation rewrites the result (same source, a new ETag: a new ``computed_at``)."""
    head = s3.head_object(Bucket=BUCKET, Key=RESULT)
    body = f'{{"rewritten": "{head["ETag"]}"}}'.encode()  # never the body it replaces
    s3.put_object(Bucket=BUCKET, Key=RESULT, Body=body, Metadata=head["Metadata"])


def test_a_result_rewritten_meanwhile_is_not_removed_blindly(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch, s3_calls: list[str]
) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    deletion = delete(s3, KEY, sequencer="0B")
    before_first(monkeypatch, "DeleteObject", lambda: rewrite_result(s3))
    s3_calls.clear()

    assert run(deletion, context)["status"] == "withdrawn"  # looked again, then removed
    # The refused DELETE is not looked after: a fresh look at both, then the withdrawal.
    assert s3_calls == [*WITHDRAWAL[:3], *WITHDRAWAL]
    assert not has_result(s3)


def test_a_newer_uploads_result_written_meanwhile_stands(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    deletion = delete(s3, KEY, sequencer="0B")

    def newer_upload() -> None:
        event = upload_price(s3, 200, "0C", KEY)
        process(s3, object_events(event)[0], Settings.from_env())

    before_first(monkeypatch, "DeleteObject", newer_upload)

    # Its DELETE refused, it looks again: the newer upload's result fits the key.
    assert run(deletion, context)["reason"] == "KeyHasCurrentObject"
    assert total(s3) == 200


def skipped_record(reason: str) -> dict[str, Any]:
    return {"bucket": BUCKET, "key": KEY, "status": "skipped", "reason": reason}


def test_a_result_that_keeps_changing_is_retried_as_a_failure(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    deletion = delete(s3, KEY, sequencer="0B")
    item = object_events(deletion)[0]
    before_first(monkeypatch, "DeleteObject", lambda: rewrite_result(s3), MAX_LOOKS)

    with pytest.raises(storage.ResultConflict, match=f"{RESULT} changed on each of"):
        follow_deletion(storage.new_client(), item, Settings.from_env())
    assert has_result(s3)  # never removed blindly


def test_a_create_whose_result_was_withdrawn_meanwhile_does_not_write_it_back(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    newer = upload_price(s3, 200, "0B", KEY)

    def deleted_and_withdrawn() -> None:
        item = object_events(delete(s3, KEY, sequencer="0C"))[0]
        assert follow_deletion(s3, item, Settings.from_env()).status == "withdrawn"

    before_first(monkeypatch, "PutObject", deleted_and_withdrawn)

    assert run(newer, context)["reason"] == Reason.SOURCE_CHANGED
    assert not has_result(s3)


def test_a_promotion_whose_object_goes_meanwhile_writes_nothing(
    versioned: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, removal = current_version_removed(versioned, context)

    def marker() -> None:
        versioned.delete_object(Bucket=BUCKET, Key=KEY)

    before_first(monkeypatch, "GetObject", marker)

    assert run(removal, context) == skipped_record(Reason.SOURCE_DELETED)
    assert total(versioned) == 200  # the marker's own event withdraws it


def test_a_promotion_loses_to_a_later_upload_written_meanwhile(
    versioned: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, removal = current_version_removed(versioned, context)

    def later_upload() -> None:
        event = upload_price(versioned, 300, "0D", KEY)
        process(versioned, object_events(event)[0], Settings.from_env())

    before_first(monkeypatch, "PutObject", later_upload)

    assert run(removal, context) == skipped_record("KeyHasCurrentObject")
    assert total(versioned) == 300


def test_a_promotion_reads_the_version_it_looked_at_not_a_newer_upload(
    versioned: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, removal = current_version_removed(versioned, context)
    newer: list[dict[str, Any]] = []
    # Uploaded between the look at the key and the read; its own event is still to come.
    before_first(
        monkeypatch, "GetObject", lambda: newer.append(upload_price(versioned, 300, "0D", KEY))
    )

    assert run(removal, context) == skipped_record(Reason.SOURCE_CHANGED)
    assert total(versioned) == 200  # nothing of 300 written under the deletion's sequencer
    assert run(newer[0], context)["status"] == "ok"
    assert total(versioned) == 300


# --- a backfill's orphans (withdraw_orphan: scripts/backfill.py's reconciliation) -------------


def orphan_outcome(client: S3Client) -> Outcome:
    return withdraw_orphan(client, BUCKET, RESULT, Settings.from_env())


def test_an_orphan_result_is_withdrawn_and_named(s3: S3Client, context: LocalContext) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    s3.delete_object(Bucket=BUCKET, Key=KEY)  # behind the function's back: no event

    assert orphan_outcome(s3) == Outcome(BUCKET, KEY, Status.WITHDRAWN, result_key=RESULT)
    assert not has_result(s3)


def test_a_result_whose_input_is_there_is_no_orphan(s3: S3Client, context: LocalContext) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)

    assert orphan_outcome(s3) == Outcome.skipped(BUCKET, KEY, Reason.KEY_HAS_CURRENT_OBJECT)
    assert total(s3) == 100


def test_an_object_that_is_no_result_of_ours_is_left_alone(s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key=RESULT, Body=b"not ours")

    assert orphan_outcome(s3) == Outcome.skipped(BUCKET, RESULT, Reason.NO_RESULT_TO_WITHDRAW)
    assert has_result(s3)


def test_an_orphan_rewritten_meanwhile_stands(s3: S3Client, context: LocalContext) -> None:
    run(upload_price(s3, 100, "0A", KEY), context)
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    client = storage.new_client()

    def uploaded_and_totalled(**_: Any) -> None:  # between the look at the input and the DELETE
        event = upload_price(s3, 200, "0B", KEY)
        process(s3, object_events(event)[0], Settings.from_env())

    client.meta.events.register("before-parameter-build.s3.DeleteObject", uploaded_and_totalled)

    assert orphan_outcome(client) == Outcome.skipped(BUCKET, KEY, Reason.RESULT_UP_TO_DATE)
    assert total(s3) == 200


def test_without_conditional_deletes_an_orphans_key_uploaded_meanwhile_is_totalled(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = server_s3
    run(upload_price(s3, 100, "0A", KEY), context)
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    without_conditional_deletes(monkeypatch)
    before_the_unconditional_delete(
        monkeypatch,
        lambda: s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"products": [{"price": 300}]}'),
    )

    outcome = orphan_outcome(storage.new_client())
    assert (outcome.bucket, outcome.key, outcome.status) == (BUCKET, KEY, "ok")
    assert total(s3) == 300


# --- what the handler says about it -----------------------------------------------------------


def test_every_deletion_reason_is_explained() -> None:
    for reason in (
        Reason.NO_RESULT_TO_WITHDRAW,
        Reason.DELETION_IS_LATE,
        Reason.KEY_HAS_CURRENT_OBJECT,
    ):
        assert "delet" in reason.meaning or "withdraw" in reason.meaning


def test_a_batch_report_names_a_withdrawn_result() -> None:
    outcome = Outcome(BUCKET, KEY, Status.WITHDRAWN, result_key=RESULT)
    assert _result_string(outcome) == f"withdrawn: {RESULT}"


# --- every deletion shape S3 sends, end to end ------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "delete.json",
        "delete-marker.json",
        "delete-version.json",
        "lifecycle-expiration-delete.json",
        "lifecycle-expiration-delete-marker.json",
        "eventbridge-object-deleted.json",
        "eventbridge-lifecycle-expiration.json",
    ],
)
@pytest.mark.parametrize("bucket_kind", ["unversioned", "versioned"])
def test_each_sample_deletion_withdraws_the_result(
    s3: S3Client, context: LocalContext, name: str, bucket_kind: str
) -> None:
    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = load_event(name)
    [item] = object_events(event)
    result = item.key.rsplit("/", 1)[0] + "/total_price.json"
    run(upload(s3, item.key, b'{"products": [{"price": 4}]}', sequencer="0001"), context)
    s3.delete_object(Bucket=BUCKET, Key=item.key)

    # The sample's version id names no version of this bucket: the key's state decides.
    assert run(event, context) == {
        "bucket": BUCKET,
        "key": item.key,
        "status": "withdrawn",
        "result_key": result,
    }
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=result)["KeyCount"] == 0


def test_deletions_through_sqs_and_sns_fail_no_message(
    versioned: S3Client, context: LocalContext
) -> None:
    run(upload_price(versioned, 100, "0001", KEY), context)
    versioned.delete_object(Bucket=BUCKET, Key=KEY)

    # Two messages: the deletion itself, and the delete marker's notification through SNS.
    assert lambda_handler(load_event("sqs-s3-delete.json"), context) == {"batchItemFailures": []}
    assert not has_result(versioned)


def test_a_late_deletion_through_sqs_fails_no_message(s3: S3Client, context: LocalContext) -> None:
    run(upload_price(s3, 100, "FFFFFFFFFFFFFFFFFFFF", KEY), context)  # later than the samples'
    assert lambda_handler(load_event("sqs-s3-delete.json"), context) == {"batchItemFailures": []}
    assert total(s3) == 100


def test_a_deletion_s3_fails_to_answer_is_a_failed_message(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(upload_price(s3, 100, "0001", KEY), context)
    s3.delete_object(Bucket=BUCKET, Key=KEY)

    def refuse(client: S3Client) -> None:
        def denied(**_: Any) -> None:
            raise storage.ResultConflict("S3 did not answer")  # stands for any S3 failure

        client.meta.events.register("before-parameter-build.s3.DeleteObject", denied)

    on_handler_clients(monkeypatch, refuse)
    answer = lambda_handler(load_event("sqs-s3-delete.json"), context)
    assert len(answer["batchItemFailures"]) == 2
    assert has_result(s3)


# --- a store without conditional deletes (LocalStack's S3) -------------------------------------


def without_conditional_deletes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's clients get ``501 NotImplemented`` for a DeleteObject with ``If-Match``,
    as from LocalStack's S3; unconditional ones go through."""
    refuse = error_status(501, "NotImplemented")

    def install(client: S3Client) -> None:
        def before_send(request: Any, event_name: str, **_: Any) -> Any:
            conditional = event_name.endswith("DeleteObject") and "If-Match" in request.headers
            return refuse(request) if conditional else None

        client.meta.events.register_first("before-send.s3", before_send)

    on_handler_clients(monkeypatch, install)


def before_the_unconditional_delete(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]
) -> None:
    """Run ``action`` between the comparing HEAD and the unconditional DELETE: before the
    handler's second DeleteObject, not its first (the conditional one, refused)."""
    deletes: list[bool] = []

    def second() -> None:
        deletes.append(True)
        if len(deletes) == 2:
            action()

    before_first(monkeypatch, "DeleteObject", second, times=2)


@pytest.fixture
def lenient_deletion(
    server_s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A result of ``KEY``, then ``KEY`` deleted, on the moto server (faults are injected into
    HTTP requests: a server, not an in-process mock), whose conditional DELETEs the handler's
    clients now see refused: the deletion's event."""
    run(upload_price(server_s3, 100, "0A", KEY), context)
    deletion = delete(server_s3, KEY, sequencer="0B")
    without_conditional_deletes(monkeypatch)
    return deletion


def test_without_conditional_deletes_the_result_is_compared_then_removed(
    server_s3: S3Client,
    lenient_deletion: dict[str, Any],
    context: LocalContext,
    s3_calls: list[str],
) -> None:
    s3_calls.clear()

    assert run(lenient_deletion, context)["status"] == "withdrawn"
    # The refused conditional DELETE, a HEAD to compare, the DELETE, and a look at the key.
    assert s3_calls == [*WITHDRAWAL[:3], "HeadObject", "DeleteObject", "HeadObject"]
    assert not has_result(server_s3)


def test_without_conditional_deletes_a_result_changed_meanwhile_is_looked_at_again(
    server_s3: S3Client,
    lenient_deletion: dict[str, Any],
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before_first(monkeypatch, "DeleteObject", lambda: rewrite_result(server_s3))

    assert run(lenient_deletion, context)["status"] == "withdrawn"
    assert not has_result(server_s3)


def test_without_conditional_deletes_an_upload_made_meanwhile_is_totalled_again(
    server_s3: S3Client,
    lenient_deletion: dict[str, Any],
    context: LocalContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def newer_upload() -> None:
        event = upload_price(server_s3, 200, "0C", KEY)
        process(server_s3, object_events(event)[0], Settings.from_env())

    before_the_unconditional_delete(monkeypatch, newer_upload)

    assert run(lenient_deletion, context)["status"] == "ok"
    assert total(server_s3) == 200


pytest_plugins = ["tests.harness"]
