"""Property: whatever the interleaving of uploads, deletions (delete markers, versions removed,
delete markers removed) and deliveries of their events (late, out of order, redelivered), once
every event has been delivered at least once the result says what the key's current object
says: its total, or no result where the key has no current object (``docs/behaviour.md``,
"Deletions"). Sequentially on moto: the races are in test_races.py."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from handler.app import lambda_handler
from handler.result_store import KNOWN
from localrun.invoke import LocalContext, delete_and_tell, put_event
from tests.support import BUCKET, examples

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY = "m/market_infos.json"
RESULT = "m/total_price.json"
LOCALSTACK = "0055AED6DCD90281E5"  # one sequencer for every event: the key's state decides

# A step: an upload of a price, a deletion of the key, a deletion of one version (picked by
# index among those that exist), or the delivery of one event made so far (picked by index).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("upload"), st.integers(0, 9)),
        st.tuples(st.just("delete"), st.just(0)),
        st.tuples(st.just("delete_version"), st.integers(0, 20)),
        st.tuples(st.just("deliver"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=14,
)


class Bucket:
    """The bucket and the events S3 sent so far, with sequencers in the order of the writes."""

    def __init__(self, client: S3Client, *, real_sequencers: bool) -> None:
        self.client = client
        self.real_sequencers = real_sequencers
        self.events: list[dict[str, Any]] = []
        self._count = 0

    def sequencer(self) -> str:
        self._count += 1
        return f"{self._count:018X}" if self.real_sequencers else LOCALSTACK

    def upload(self, price: int) -> None:
        body = f'{{"products": [{{"price": {price}}}, {{"price": 0.5}}]}}'.encode()
        put = self.client.put_object(Bucket=BUCKET, Key=KEY, Body=body)
        self.events.append(
            put_event(
                BUCKET,
                KEY,
                etag=put["ETag"].strip('"'),
                size=len(body),
                sequencer=self.sequencer(),
                version_id=put.get("VersionId"),
            )
        )

    def delete(self, version_id: str | None = None) -> None:
        self.events.append(
            delete_and_tell(
                self.client, BUCKET, KEY, version_id=version_id, sequencer=self.sequencer()
            )
        )

    def versions(self) -> list[str]:
        """Every version and delete marker of the key, newest first."""
        listing = self.client.list_object_versions(Bucket=BUCKET, Prefix=KEY)
        entries = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        entries.sort(key=lambda entry: entry["LastModified"], reverse=True)
        return [entry["VersionId"] for entry in entries]

    def current_total(self) -> Decimal | None:
        try:
            body = self.client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return sum((Decimal(str(p["price"])) for p in json.loads(body)["products"]), Decimal(0))

    def result_total(self) -> Decimal | None:
        try:
            body = self.client.get_object(Bucket=BUCKET, Key=RESULT)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        document = json.loads(body, parse_float=Decimal)
        assert document["status"] == "ok"
        return Decimal(document["total"])


def deliver(event: dict[str, Any]) -> None:
    record = lambda_handler(event, LocalContext())["records"][0]
    assert record["status"] in ("ok", "withdrawn", "skipped"), record


@settings(max_examples=examples(80), deadline=None)
@given(
    plan=steps,
    versioned=st.booleans(),
    real_sequencers=st.booleans(),
    order=st.randoms(use_true_random=False),
)
def test_the_result_ends_where_the_keys_current_object_is(
    plan: list[tuple[str, int]], versioned: bool, real_sequencers: bool, order: Any
) -> None:
    KNOWN.clear()  # each example is a new container, and a new S3
    with mock_aws():
        client: S3Client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        if versioned:
            client.put_bucket_versioning(
                Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
            )
        bucket = Bucket(client, real_sequencers=real_sequencers)
        for action, pick in plan:
            if action == "upload":
                bucket.upload(pick)
            elif action == "delete":
                bucket.delete()
            elif action == "delete_version" and versioned and (versions := bucket.versions()):
                bucket.delete(versions[pick % len(versions)])
            elif action == "deliver" and bucket.events:
                deliver(bucket.events[pick % len(bucket.events)])  # early, or again
        # Every event at least once more, in any order: late ones included.
        pending = list(bucket.events)
        order.shuffle(pending)
        for event in pending:
            deliver(event)

        assert bucket.result_total() == bucket.current_total()
