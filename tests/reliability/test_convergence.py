"""The convergence checker (contract r4, "Converges under every interleaving"; docs/behaviour.md,
"Convergence"): once every event of a key has been handled, the result is the total of the
key's current object as S3 itself serves it, or absent where the key has none, whatever the
order, duplication, batching and overlap of the invocations, and wherever one of them is paused
between two of its requests.

Over real HTTP to a moto server (``atomic_moto``: each request atomic, as S3's are), with the
pausing and the scheduler of ``interleaving`` (shared with the LocalStack half,
``tests/end_to_end/localstack/test_localstack_convergence.py``). The expected state is read from S3
(the
key's current object's bytes), never from the function's own metadata.

The four races of issue 24 are named cases below; ``test_random_schedules_converge`` runs
``CONVERGENCE_SCHEDULES`` random schedules (``make convergence SCHEDULES=...`` for many more),
and a failing one prints its seed (``CONVERGENCE_SEED=<seed>`` replays it).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from handler import storage
from localrun.invoke import delete_and_tell
from tests.faults import combine
from tests.interleaving import (
    Gate,
    Paused,
    Pauses,
    Schedule,
    current_total,
    invoke,
    market,
    pausing_handler_clients,
    stored_total,
    versions_of,
)
from tests.support import BUCKET, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytest_plugins = ["tests.harness"]

KEY = "m/market_infos.json"
RESULT = "m/total_price.json"
LOCALSTACK = "0055AED6DCD90281E5"  # one sequencer for every event, as LocalStack sends
SCHEDULES = int(os.environ.get("CONVERGENCE_SCHEDULES", "300"))


# --- what S3 says --------------------------------------------------------------------------------


def expected(client: S3Client) -> Decimal | None:
    return current_total(client, BUCKET, KEY)


def result_total(client: S3Client) -> Decimal | None:
    return stored_total(client, BUCKET, RESULT)


def version_of(event: dict[str, Any]) -> str:
    return str(event["Records"][0]["s3"]["object"]["versionId"])


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    return pausing_handler_clients(monkeypatch)


# --- the four named races of issue 24 ------------------------------------------------------------

named = pytest.mark.usefixtures("atomic_moto", "concurrent_invocations")


@named
@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
@pytest.mark.parametrize("sequencers", ["real", "constant"])
def test_aba_resurrection(
    server_s3: S3Client, pauses: Pauses, *, versioned: bool, sequencers: str
) -> None:
    """A create reads v1 and finds no result; v2 is uploaded, totalled, deleted and withdrawn;
    the paused create's ``If-None-Match: *`` write then succeeds."""
    if versioned:
        server_s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
    seq = iter(["0A", "0B", "0C"] if sequencers == "real" else [LOCALSTACK] * 3)
    first = upload(server_s3, KEY, market(1), sequencer=next(seq))
    create = Paused(pauses, first, Gate(operation="PutObject"))
    assert create.wait_until_paused()

    invoke(upload(server_s3, KEY, market(2), sequencer=next(seq)))
    invoke(delete_and_tell(server_s3, BUCKET, KEY, sequencer=next(seq)))
    assert result_total(server_s3) is None  # withdrawn
    create.finish()

    assert expected(server_s3) is None
    assert result_total(server_s3) is None


@named
def test_current_version_deleted_while_a_create_is_between_read_and_write(
    server_s3: S3Client, pauses: Pauses
) -> None:
    """v2's create has read v2; v2 is deleted for good (v1 current again) and that deletion's
    event finds the result already v1's; the create's write then lands, naming v2."""
    server_s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    invoke(upload(server_s3, KEY, market(1), sequencer="0A"))
    second = upload(server_s3, KEY, market(2), sequencer="0B")
    create = Paused(pauses, second, Gate(operation="PutObject"))
    assert create.wait_until_paused()

    invoke(delete_and_tell(server_s3, BUCKET, KEY, version_id=version_of(second), sequencer="0C"))
    create.finish()

    assert expected(server_s3) == Decimal("1.5")
    assert result_total(server_s3) == Decimal("1.5")


@named
def test_a_promotion_paused_while_the_key_is_emptied(server_s3: S3Client, pauses: Pauses) -> None:
    """A deletion promotes v1 and pauses before its write; v1 is deleted too, and that
    deletion's event finds no result to withdraw; the promotion's write then lands."""
    server_s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = upload(server_s3, KEY, market(1), sequencer="0A")
    second = upload(server_s3, KEY, market(2), sequencer="0B")
    removal = delete_and_tell(server_s3, BUCKET, KEY, version_id=version_of(second), sequencer="0C")
    promotion = Paused(pauses, removal, Gate(operation="PutObject"))
    assert promotion.wait_until_paused()

    invoke(delete_and_tell(server_s3, BUCKET, KEY, version_id=version_of(first), sequencer="0D"))
    promotion.finish()

    assert expected(server_s3) is None
    assert result_total(server_s3) is None


@named
@pytest.mark.parametrize("history", ["first-upload", "after-a-withdrawal"])
def test_a_create_read_before_the_deletion_writes_after_it(
    server_s3: S3Client, pauses: Pauses, history: str
) -> None:
    """The README's old known limit: a create whose read ran before its key was deleted, and
    whose write lands after the deletion's event found no result to withdraw; also after a
    withdrawal and a re-upload, not only after a key's first upload."""
    if history == "after-a-withdrawal":
        invoke(upload(server_s3, KEY, market(1), sequencer="01"))
        invoke(delete_and_tell(server_s3, BUCKET, KEY, sequencer="02"))
    event = upload(server_s3, KEY, market(3), sequencer="0A")
    create = Paused(pauses, event, Gate(operation="PutObject"))
    assert create.wait_until_paused()

    invoke(delete_and_tell(server_s3, BUCKET, KEY, sequencer="0B"))
    create.finish()

    assert expected(server_s3) is None
    assert result_total(server_s3) is None


# --- random schedules ----------------------------------------------------------------------------


@dataclass
class MotoKey:
    """``KEY`` in moto's ``BUCKET``, with the events S3 would send (real sequencers, or
    LocalStack's constant one)."""

    client: S3Client
    versioned: bool
    real: bool
    _count: int = 0

    def __post_init__(self) -> None:
        if self.versioned:
            self.client.put_bucket_versioning(
                Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
            )

    def sequencer(self) -> str:
        self._count += 1
        return f"{self._count:018X}" if self.real else LOCALSTACK

    def upload(self, body: bytes) -> dict[str, Any]:
        return upload(self.client, KEY, body, sequencer=self.sequencer())

    def delete(self, version_id: str | None = None) -> dict[str, Any]:
        return delete_and_tell(
            self.client, BUCKET, KEY, version_id=version_id, sequencer=self.sequencer()
        )

    def versions(self) -> list[str]:
        return versions_of(self.client, BUCKET, KEY)

    def deliver(self, chosen: list[dict[str, Any]]) -> None:
        invoke(combine(*chosen))


def _clean(client: S3Client) -> None:
    listing = client.list_object_versions(Bucket=BUCKET)
    for entry in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]:
        client.delete_object(Bucket=BUCKET, Key=entry["Key"], VersionId=entry["VersionId"])
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})


@pytest.mark.usefixtures("atomic_moto", "concurrent_invocations")
def test_random_schedules_converge(server_s3: S3Client, pauses: Pauses) -> None:
    storage.new_client()  # boto3's default session sets itself up lazily, not thread-safely
    base = int(os.environ.get("CONVERGENCE_SEED", random.SystemRandom().randrange(2**32)))
    count = 1 if "CONVERGENCE_SEED" in os.environ else SCHEDULES
    for n in range(count):
        seed = base + n
        rng = random.Random(seed)
        key = MotoKey(server_s3, versioned=rng.random() < 0.5, real=rng.random() < 0.6)
        Schedule(key, pauses, rng).run(steps=rng.randint(4, 16))
        got, want = result_total(server_s3), expected(server_s3)
        assert got == want, (
            f"schedule seed {seed} (CONVERGENCE_SEED={seed} replays it): result {got}, "
            f"S3 says {want}; versioned={key.versioned}, real sequencers={key.real}"
        )
        _clean(server_s3)
