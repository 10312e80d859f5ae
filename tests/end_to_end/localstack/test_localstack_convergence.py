"""The convergence checker's LocalStack half (issue 24; the moto half is
``tests/reliability/test_convergence.py``, the machinery ``tests/interleaving.py``): LocalStack's
S3 changes
the key, LocalStack's own notifications (S3 -> SQS, S3 -> SNS -> SQS, S3 -> EventBridge) are
the deliveries, and the handler is invoked with them as Lambda would (an SQS batch with its
partial batch response, or one EventBridge event), shuffled, repeated, several in one batch, in
threads at once, each maybe paused before one of its S3 requests while the key changes. Once
every delivery has been handled, the result must be the total of the key's current object as
LocalStack serves it, or absent where the key has none.

What differs from moto: LocalStack sends one constant sequencer, so every decision is made from
the key's state; and its S3 has no conditional DeleteObject, so a withdrawal takes the
function's fallback (``storage.withdraw_result``). The four named races of issue 24 are set up
below on every route; ``test_random_schedules_converge`` runs
``LOCALSTACK_CONVERGENCE_SCHEDULES`` random schedules (default 100, about 30 s; set it for
more), a failing one prints its seed (``CONVERGENCE_SEED=<seed>`` replays it).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from handler import storage
from handler.app import lambda_handler
from tests import interleaving
from tests.end_to_end.localstack.lambda_standin import Stack, context, sqs_event
from tests.infra.localstack_wiring import Clients, Notification, Route
from tests.interleaving import Gate, Paused, Pauses, Schedule, market

pytest_plugins = ["tests.harness"]

KEY = "m/market_infos.json"
SCHEDULES = int(os.environ.get("LOCALSTACK_CONVERGENCE_SCHEDULES", "100"))
CHECKED_ROUTES: tuple[Route, ...] = ("sqs", "sns", "eventbridge")
ROUTES = pytest.mark.parametrize("route", CHECKED_ROUTES)


def invoke_sqs(event: dict[str, Any]) -> None:
    """One SQS batch as Lambda's poller delivers it: the messages the partial batch response
    names come back (here at once) until none is named, or the tries run out."""
    for _ in range(interleaving.LAMBDA_TRIES):
        answer = lambda_handler(event, context())
        failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
        if not failed:
            return
        event = {"Records": [r for r in event["Records"] if r["messageId"] in failed]}
    raise AssertionError(
        f"messages still failing after {interleaving.LAMBDA_TRIES} tries: {failed}"
    )


@dataclass
class LocalStackKey:
    """``KEY`` in a new bucket of its own, wired by ``route``; each change returns the
    notification LocalStack sent for it, received from the route's queue."""

    stack: Stack

    @classmethod
    def create(cls, clients: Clients, route: Route, *, versioned: bool) -> LocalStackKey:
        return cls(Stack.create(clients, route, versioned=versioned))

    @property
    def versioned(self) -> bool:
        return self.stack.versioned

    def upload(self, body: bytes) -> Notification:
        self.stack.upload(KEY, body)
        (notification,) = self.stack.collect(1)
        return notification

    def delete(self, version_id: str | None = None) -> Notification | None:
        if not self.versioned and self.expected() is None:
            return None  # LocalStack notifies nothing for a key it does not hold
        self.stack.delete(KEY, version_id)
        (notification,) = self.stack.collect(1)
        return notification

    def deletion(self, version_id: str | None = None) -> Notification:
        """``delete`` where the test knows there is something to delete."""
        notification = self.delete(version_id)
        assert notification is not None
        return notification

    def versions(self) -> list[str]:
        return interleaving.versions_of(self.stack.clients.s3, self.stack.bucket, KEY)

    def deliver(self, chosen: list[Notification]) -> None:
        if self.stack.route == "eventbridge":  # one event per invocation
            for notification in chosen:
                interleaving.invoke(notification.event)
        else:
            invoke_sqs(sqs_event([n.message for n in chosen], self.stack.queue.arn))

    def expected(self) -> Decimal | None:
        return interleaving.current_total(self.stack.clients.s3, self.stack.bucket, KEY)

    def result_total(self) -> Decimal | None:
        return interleaving.stored_total(
            self.stack.clients.s3, self.stack.bucket, Stack.result_key(KEY)
        )

    def paused(self, pauses: Pauses, notification: Notification) -> Paused:
        """The invocation of ``notification``, run until its first PutObject (its write)."""
        invocation = Paused(pauses, [notification], Gate(operation="PutObject"), run=self.deliver)
        assert invocation.wait_until_paused()
        return invocation


@pytest.fixture(autouse=True)
def one_session(concurrent_invocations: None) -> None:
    """Invocations run in threads at once (``concurrent_invocations``); boto3's default session
    sets itself up lazily, not thread-safely, so it is made here first."""
    storage.new_client()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    return interleaving.pausing_handler_clients(monkeypatch)


# --- the four named races of issue 24 ------------------------------------------------------------

VERSIONED = pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])


@ROUTES
@VERSIONED
def test_aba_resurrection(
    clients: Clients, pauses: Pauses, route: Route, *, versioned: bool
) -> None:
    """A create reads v1 and finds no result; v2 is uploaded, totalled, deleted and withdrawn;
    the paused create's ``If-None-Match: *`` write then lands (LocalStack's constant
    sequencer)."""
    key = LocalStackKey.create(clients, route, versioned=versioned)
    create = key.paused(pauses, key.upload(market(1)))

    key.deliver([key.upload(market(2))])
    key.deliver([key.deletion()])
    assert key.result_total() is None  # withdrawn
    create.finish()

    assert key.expected() is None
    assert key.result_total() is None


@ROUTES
def test_current_version_deleted_while_a_create_is_between_read_and_write(
    clients: Clients, pauses: Pauses, route: Route
) -> None:
    """v2's create has read v2; v2 is deleted for good (v1 current again) and that deletion's
    event finds the result already v1's; the create's write then lands, naming v2."""
    key = LocalStackKey.create(clients, route, versioned=True)
    key.deliver([key.upload(market(1))])
    second = key.upload(market(2))
    create = key.paused(pauses, second)

    assert second.version_id is not None
    key.deliver([key.deletion(version_id=second.version_id)])
    create.finish()

    assert key.expected() == Decimal("1.5")
    assert key.result_total() == Decimal("1.5")


@ROUTES
def test_a_promotion_paused_while_the_key_is_emptied(
    clients: Clients, pauses: Pauses, route: Route
) -> None:
    """A deletion promotes v1 and pauses before its write; v1 is deleted too, and that
    deletion's event finds no result to withdraw; the promotion's write then lands."""
    key = LocalStackKey.create(clients, route, versioned=True)
    first = key.upload(market(1))
    second = key.upload(market(2))
    assert first.version_id is not None
    assert second.version_id is not None
    promotion = key.paused(pauses, key.deletion(version_id=second.version_id))

    key.deliver([key.deletion(version_id=first.version_id)])
    promotion.finish()

    assert key.expected() is None
    assert key.result_total() is None


@ROUTES
@VERSIONED
@pytest.mark.parametrize("history", ["first-upload", "after-a-withdrawal"])
def test_a_create_read_before_the_deletion_writes_after_it(
    clients: Clients, pauses: Pauses, route: Route, history: str, *, versioned: bool
) -> None:
    """The README's old known limit: a create whose read ran before its key was deleted, and
    whose write lands after the deletion's event found no result to withdraw; also after a
    withdrawal and a re-upload, not only after a key's first upload."""
    key = LocalStackKey.create(clients, route, versioned=versioned)
    if history == "after-a-withdrawal":
        key.deliver([key.upload(market(1))])
        key.deliver([key.deletion()])
    create = key.paused(pauses, key.upload(market(3)))

    key.deliver([key.deletion()])
    create.finish()

    assert key.expected() is None
    assert key.result_total() is None


# --- random schedules ----------------------------------------------------------------------------


def test_random_schedules_converge(clients: Clients, pauses: Pauses) -> None:
    base = int(os.environ.get("CONVERGENCE_SEED", random.SystemRandom().randrange(2**32)))
    count = 1 if "CONVERGENCE_SEED" in os.environ else SCHEDULES
    for n in range(count):
        seed = base + n
        rng = random.Random(seed)
        route = rng.choice(CHECKED_ROUTES)
        key = LocalStackKey.create(clients, route, versioned=rng.random() < 0.5)
        Schedule(key, pauses, rng).run(steps=rng.randint(4, 12))
        got, want = key.result_total(), key.expected()
        assert got == want, (
            f"schedule seed {seed} (CONVERGENCE_SEED={seed} replays it): result {got}, "
            f"LocalStack's S3 says {want}; route={route}, versioned={key.versioned}"
        )
