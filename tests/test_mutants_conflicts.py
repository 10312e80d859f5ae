"""Another invocation's result lands between our check and our write: the conditional write
fails, and whether ours may still replace theirs depends on whether the version we read is still
the key's current object. Written to kill mutants that ``make mutation`` found surviving
(docs/mutation.md), through ``lambda_handler`` on moto: the rival write is made from a hook on
the handler's own client, just before its PutObject."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from faults import FaultInjector, error_status, on_handler_clients
from handler import storage
from handler.app import RecordsFailed, lambda_handler
from support import BUCKET, read_result, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from local_invoke import LocalContext

pytest_plugins = ["harness"]

KEY = "m/market_infos.json"
RESULT = "m/total_price.json"
DOC = b'{"products": [{"price": 1.25}, {"price": 2}]}'
RIVAL = b'{"status": "ok", "total": 99}'


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
    event = upload(s3, KEY, DOC, sequencer="0A")
    before_first_put(monkeypatch, lambda: rival_result(s3))

    summary = lambda_handler(event, context)

    assert summary["records"][0]["status"] == "ok"
    result = read_result(s3, RESULT)
    assert result["total"] == 3.25
    assert result["source"]["sequencer"] == "0A"


def test_a_rival_stands_once_our_source_is_deleted(
    s3: S3Client, context: LocalContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = upload(s3, KEY, DOC, sequencer="0A")

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
    event = upload(s3, KEY, DOC, sequencer="0A")

    def rival_then_reupload() -> None:
        rival_result(s3, version_id="another-version")
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=DOC)

    before_first_put(monkeypatch, rival_then_reupload)

    summary = lambda_handler(event, context)

    assert summary["records"][0]["status"] == "skipped"
    assert summary["records"][0]["reason"] == "SourceChanged"
    assert s3.get_object(Bucket=BUCKET, Key=RESULT)["Body"].read() == RIVAL


def test_a_put_refused_for_another_reason_is_raised_not_taken_for_a_conflict(
    s3: S3Client, context: LocalContext, faults: FaultInjector
) -> None:
    # A result exists (so the write is conditional on its ETag), and the PUT is denied.
    lambda_handler(upload(s3, KEY, DOC, sequencer="0A"), context)
    faults.attempts.clear()
    faults.always("PutObject", error_status(403, "AccessDenied"))

    with pytest.raises(RecordsFailed, match="AccessDenied"):
        lambda_handler(upload(s3, KEY, DOC + b" ", sequencer="0B"), context)

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
        lambda_handler(upload(s3, KEY, DOC, sequencer="0A"), context)

    assert len(rivals) == 5
