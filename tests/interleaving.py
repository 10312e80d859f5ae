"""The convergence checker's machinery, shared by its two halves: ``test_convergence.py`` (moto,
AWS-shaped events we make) and ``localstack/test_localstack_convergence.py`` (LocalStack's S3 and
its own notifications). One copy of the pausing and of the scheduler, so both halves drive the
same schedules; each half says only how its key is changed and how its deliveries are invoked
(a ``Key``).

Invocations are paused by a botocore ``before-call.s3.*`` hook on the handler's clients that
blocks on a ``threading.Event`` the scheduler sets; the scheduler meanwhile changes the key and
runs other invocations. The expected state is read from S3 (the key's current object's bytes),
never from the function's own metadata.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import pytest
from botocore.exceptions import ClientError

from handler.app import RecordsFailed, lambda_handler
from handler.result_store import KNOWN
from localrun.invoke import LocalContext
from tests.faults import on_handler_clients

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Lambda retries a failed asynchronous invocation twice.
LAMBDA_TRIES = 3
#: What one half delivers: an event it made, a notification LocalStack sent.
Delivery = TypeVar("Delivery")


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


def pausing_handler_clients(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    """``Pauses`` installed on every client the handler makes from now on (each half's
    ``pauses`` fixture)."""
    found = Pauses()
    on_handler_clients(monkeypatch, found.install)
    return found


def invoke(event: dict[str, Any]) -> None:
    """One event's invocations as Lambda makes them (asynchronously, or EventBridge's rule
    target): retried while it raises."""
    for attempt in range(1, LAMBDA_TRIES + 1):
        try:
            lambda_handler(event, LocalContext())
        except RecordsFailed:
            if attempt == LAMBDA_TRIES:
                raise
        else:
            return


class Paused:
    """An invocation run in a thread of its own, stopped at ``gate``: ``run(work)``, by default
    ``invoke`` of an event."""

    def __init__(
        self,
        pauses: Pauses,
        work: Any,
        gate: Gate,
        run: Callable[[Any], None] = invoke,
    ) -> None:
        self.gate = gate
        self.error: BaseException | None = None

        def body() -> None:
            pauses.hold(gate)
            try:
                run(work)
            except BaseException as error:  # noqa: BLE001 - reported by finish()
                self.error = error

        self.thread = threading.Thread(target=body, daemon=True)
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


def current_total(client: S3Client, bucket: str, key: str) -> Decimal | None:
    """The total of the key's current object as S3 serves it, or ``None`` where it has none."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None
    prices = json.loads(body, parse_float=Decimal)["products"]
    return sum((Decimal(p["price"]) for p in prices), Decimal(0))


def stored_total(client: S3Client, bucket: str, result: str) -> Decimal | None:
    """The total the function's result at ``result`` holds, or ``None`` where there is none."""
    try:
        body = client.get_object(Bucket=bucket, Key=result)["Body"].read()
    except ClientError:
        return None
    return Decimal(json.loads(body, parse_float=Decimal)["total"])


def market(price: int) -> bytes:
    return f'{{"products": [{{"price": {price}}}, {{"price": 0.5}}]}}'.encode()


def versions_of(client: S3Client, bucket: str, key: str) -> list[str]:
    """The ids of the key's versions and delete markers, as S3 lists them."""
    listing = client.list_object_versions(Bucket=bucket, Prefix=key)
    ids = [v["VersionId"] for v in listing.get("Versions", [])]
    return ids + [m["VersionId"] for m in listing.get("DeleteMarkers", [])]


# --- random schedules ----------------------------------------------------------------------------


class Key(Protocol[Delivery]):
    """One key of one bucket, as a half of the checker changes it and delivers its events.

    ``upload`` and ``delete`` change the key and return the delivery (an event, a received
    notification) S3 sends for that change (``None``: there is none); ``deliver`` is one
    invocation with several, made as Lambda makes it (retries included), in whatever thread
    calls it."""

    @property
    def versioned(self) -> bool: ...

    def upload(self, body: bytes) -> Delivery: ...

    def delete(self, version_id: str | None = None) -> Delivery | None: ...

    def versions(self) -> list[str]: ...

    def deliver(self, chosen: list[Delivery]) -> None: ...


class Schedule(Generic[Delivery]):
    """One random history of one key with its deliveries, driven step by step: uploads,
    deletions (of the key, of one version), and invocations of deliveries made so far
    (shuffled, again, several in one batch), each maybe paused before one of its requests,
    while the scheduler goes on; at the end every delivery not yet made is made (concurrently),
    and every paused invocation resumed in a random order. The caller then compares the result
    with S3."""

    def __init__(self, key: Key[Delivery], pauses: Pauses, rng: random.Random) -> None:
        self.rng = rng
        self.key = key
        self.pauses = pauses
        self.events: list[Delivery] = []
        self.undelivered: list[Delivery] = []
        self.running: list[Paused] = []

    def made(self, event: Delivery | None) -> None:
        if event is None:
            return
        self.events.append(event)
        self.undelivered.append(event)

    def change(self) -> None:
        roll = self.rng.random()
        if roll < 0.5:
            self.made(self.key.upload(market(self.rng.randrange(10))))
        elif roll < 0.75 or not self.key.versioned:
            self.made(self.key.delete())
        elif ids := self.key.versions():
            self.made(self.key.delete(version_id=self.rng.choice(ids)))

    def deliver(self, chosen: list[Delivery]) -> None:
        for event in chosen:
            if event in self.undelivered:
                self.undelivered.remove(event)
        gate = Gate(at=self.rng.randint(1, 6)) if self.rng.random() < 0.7 else Gate()
        invocation = Paused(self.pauses, chosen, gate, run=self.key.deliver)
        invocation.wait_until_paused()
        self.running.append(invocation)

    def release_one(self) -> None:
        if self.running:
            self.running.pop(self.rng.randrange(len(self.running))).finish()

    def run(self, steps: int) -> None:
        KNOWN.clear()  # a new container (each invocation thread shares it: one warm container)
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
