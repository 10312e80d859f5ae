"""The convergence checker (contract r4, "Converges under every interleaving"; docs/behaviour.md,
"Convergence"): once every event of a key has been handled, the result is the total of the
key's current object as S3 itself serves it, or absent where the key has none, whatever the
order, duplication, batching and overlap of the invocations, and wherever one of them is paused
between two of its requests.

Over real HTTP to a moto server (``atomic_moto``: each request atomic, as S3's are). Invocations
are paused by a botocore ``before-call.s3.*`` hook on the handler's clients that blocks on a
``threading.Event`` the scheduler sets; the scheduler meanwhile changes the key and runs other
invocations. The expected state is read from S3 (the key's current object's bytes), never from
the function's own metadata.

The four races of issue 24 are named cases below; ``test_random_schedules_converge`` runs
``CONVERGENCE_SCHEDULES`` random schedules (``make convergence SCHEDULES=...`` for many more),
and a failing one prints its seed (``CONVERGENCE_SEED=<seed>`` replays it).
"""

from __future__ import annotations

import json
import os
import random
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from faults import combine, on_handler_clients
from handler import storage
from handler.app import RecordsFailed, lambda_handler
from handler.known_results import KNOWN
from local_invoke import LocalContext, delete_and_tell
from support import BUCKET, upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytest_plugins = ["harness"]

KEY = "m/market_infos.json"
RESULT = "m/total_price.json"
LOCALSTACK = "0055AED6DCD90281E5"  # one sequencer for every event, as LocalStack sends
#: Lambda retries a failed asynchronous invocation twice.
LAMBDA_TRIES = 3
SCHEDULES = int(os.environ.get("CONVERGENCE_SCHEDULES", "300"))


# --- pausing an invocation between two of its requests ---------------------------------------


@dataclass
class Gate:
    """Where one invocation stops: before its ``at``-th S3 request (1 = the first), or before
    its first request of ``operation``; it waits there until ``resume`` is set."""

    at: int | None = None
    operation: str | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)
    seen: int = 0


class Pauses:
    """The gates of the invocations running now, by thread: installed on every client the
    handler makes. Requests from threads without a gate (the handler's own HEAD beside its GET,
    the scheduler's) pass untouched."""

    def __init__(self) -> None:
        self._gates: dict[int, Gate] = {}
        self._lock = threading.Lock()

    def install(self, client: S3Client) -> None:
        client.meta.events.register("before-call.s3", self._before_call)

    def hold(self, gate: Gate) -> None:
        with self._lock:
            self._gates[threading.get_ident()] = gate

    def _before_call(self, event_name: str, **_: Any) -> None:
        with self._lock:
            gate = self._gates.get(threading.get_ident())
        if gate is None or gate.reached.is_set():
            return
        gate.seen += 1
        operation = event_name.rsplit(".", 1)[1]
        if gate.seen == gate.at or operation == gate.operation:
            gate.reached.set()
            assert gate.resume.wait(timeout=30), "a paused invocation was never resumed"


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    found = Pauses()
    on_handler_clients(monkeypatch, found.install)
    return found


def invoke(event: dict[str, Any]) -> None:
    """One event's invocations as Lambda makes them: retried while it raises."""
    for attempt in range(1, LAMBDA_TRIES + 1):
        try:
            lambda_handler(event, LocalContext())
        except RecordsFailed:
            if attempt == LAMBDA_TRIES:
                raise
        else:
            return


class Paused:
    """An invocation run in a thread of its own, stopped at ``gate``."""

    def __init__(self, pauses: Pauses, event: dict[str, Any], gate: Gate) -> None:
        self.gate = gate
        self.error: BaseException | None = None

        def run() -> None:
            pauses.hold(gate)
            try:
                invoke(event)
            except BaseException as error:  # noqa: BLE001 - reported by finish()
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait_until_paused(self) -> bool:
        """Whether it reached its gate (``False``: it finished without)."""
        while self.thread.is_alive():
            if self.gate.reached.wait(timeout=0.005):
                return True
        return self.gate.reached.is_set()

    def finish(self) -> None:
        self.gate.resume.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "an invocation hung"
        if self.error is not None:
            raise self.error


# --- what S3 says --------------------------------------------------------------------------------


def expected(client: S3Client) -> Decimal | None:
    """The total of the key's current object as S3 serves it, or ``None`` where it has none."""
    try:
        body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    except ClientError:
        return None
    prices = json.loads(body, parse_float=Decimal)["products"]
    return sum((Decimal(p["price"]) for p in prices), Decimal(0))


def result_total(client: S3Client) -> Decimal | None:
    try:
        body = client.get_object(Bucket=BUCKET, Key=RESULT)["Body"].read()
    except ClientError:
        return None
    return Decimal(json.loads(body, parse_float=Decimal)["total"])


def market(price: int) -> bytes:
    return f'{{"products": [{{"price": {price}}}, {{"price": 0.5}}]}}'.encode()


def version_of(event: dict[str, Any]) -> str:
    return str(event["Records"][0]["s3"]["object"]["versionId"])


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


class Schedule:
    """One random history of one key with its deliveries, driven step by step: uploads,
    deletions (of the key, of one version), and invocations of events made so far (shuffled,
    again, several in one batch), each maybe paused before one of its requests, while the
    scheduler goes on; at the end every event not yet delivered is delivered (concurrently),
    every paused invocation resumed in a random order, and the result compared with S3."""

    def __init__(self, client: S3Client, pauses: Pauses, seed: int) -> None:
        self.rng = random.Random(seed)
        self.client = client
        self.pauses = pauses
        self.versioned = self.rng.random() < 0.5
        self.real = self.rng.random() < 0.6
        self.events: list[dict[str, Any]] = []
        self.undelivered: list[dict[str, Any]] = []
        self.running: list[Paused] = []
        self._count = 0

    def sequencer(self) -> str:
        self._count += 1
        return f"{self._count:018X}" if self.real else LOCALSTACK

    def made(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.undelivered.append(event)

    def change(self) -> None:
        roll = self.rng.random()
        if roll < 0.5:
            self.made(
                upload(self.client, KEY, market(self.rng.randrange(10)), sequencer=self.sequencer())
            )
        elif roll < 0.75 or not self.versioned:
            self.made(delete_and_tell(self.client, BUCKET, KEY, sequencer=self.sequencer()))
        else:
            listing = self.client.list_object_versions(Bucket=BUCKET, Prefix=KEY)
            ids = [v["VersionId"] for v in listing.get("Versions", [])]
            ids += [m["VersionId"] for m in listing.get("DeleteMarkers", [])]
            if ids:
                version = self.rng.choice(ids)
                self.made(
                    delete_and_tell(
                        self.client, BUCKET, KEY, version_id=version, sequencer=self.sequencer()
                    )
                )

    def deliver(self, chosen: list[dict[str, Any]]) -> None:
        for event in chosen:
            if event in self.undelivered:
                self.undelivered.remove(event)
        gate = Gate(at=self.rng.randint(1, 6)) if self.rng.random() < 0.7 else Gate()
        invocation = Paused(self.pauses, combine(*chosen), gate)
        invocation.wait_until_paused()
        self.running.append(invocation)

    def release_one(self) -> None:
        if self.running:
            self.running.pop(self.rng.randrange(len(self.running))).finish()

    def run(self, steps: int) -> None:
        KNOWN.clear()  # a new container (each invocation thread shares it: one warm container)
        if self.versioned:
            self.client.put_bucket_versioning(
                Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
            )
        for _ in range(steps):
            roll = self.rng.random()
            if roll < 0.4 or not self.events:
                self.change()
            elif roll < 0.8:
                picks = self.rng.randint(1, 3)
                self.deliver([self.rng.choice(self.events) for _ in range(picks)])
            else:
                self.release_one()
        while self.undelivered:
            self.deliver(self.undelivered[: self.rng.randint(1, 2)])
        while self.running:
            self.release_one()


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
        schedule = Schedule(server_s3, pauses, seed)
        schedule.run(steps=schedule.rng.randint(4, 16))
        got, want = result_total(server_s3), expected(server_s3)
        assert got == want, (
            f"schedule seed {seed} (CONVERGENCE_SEED={seed} replays it): result {got}, "
            f"S3 says {want}; versioned={schedule.versioned}, real sequencers={schedule.real}"
        )
        _clean(server_s3)
