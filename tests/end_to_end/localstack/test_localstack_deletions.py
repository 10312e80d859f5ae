"""Deletions end to end on LocalStack: LocalStack's own ``ObjectRemoved`` notifications (S3 ->
SQS, S3 -> SNS -> SQS) and EventBridge ``Object Deleted`` events, for delete markers and
versions removed in a versioned bucket and for plain deletes in an unversioned one, delivered as
Lambda would (``docs/behaviour.md``, "Deletions").

LocalStack's sequencer is one constant, so every decision here is made from the key's state.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from handler.events import object_events
from tests.end_to_end.localstack.lambda_standin import Stack
from tests.infra.localstack_wiring import ROUTES as ROUTE_NAMES
from tests.infra.localstack_wiring import Clients, Notification, Route

KEY = "markets/m%rkte+1/market_infos.json"
ROUTES = pytest.mark.parametrize("route", ROUTE_NAMES)


def market(price: str) -> tuple[bytes, Decimal]:
    return f'{{"products": [{{"price": {price}}}, {{"price": 1}}]}}'.encode(), Decimal(price) + 1


def kind(notification: Notification) -> str:
    """What LocalStack said happened: the notification's event name, or the EventBridge detail
    type with its deletion type."""
    event = notification.event
    if "detail-type" in event:
        deletion = event["detail"].get("deletion-type")
        detail_type: str = event["detail-type"]
        return detail_type + (f" ({deletion})" if deletion else "")
    name: str = event["Records"][0]["eventName"]
    return name


def statuses(stack: Stack, answers: list[Any]) -> list[str]:
    """Each record's status, whatever the route (SQS answers only name failures)."""
    if stack.route == "eventbridge":
        return [record["status"] for answer in answers for record in answer["records"]]
    assert all(answer == {"batchItemFailures": []} for answer in answers), answers
    return []


def totalled(stack: Stack, body: bytes) -> None:
    """Upload ``body`` at ``KEY`` and deliver its notification."""
    stack.upload(KEY, body)
    stack.deliver(stack.collect(1))


def test_a_deletion_withdraws_the_result_and_nothing_brings_it_back(stack: Stack) -> None:
    body, _ = market("4.50")
    put = stack.upload(KEY, body)
    (created,) = stack.collect(1)
    stack.invoke([created], delete=False)  # handled, but its delete is lost: it comes again
    assert stack.has_result(KEY)

    stack.delete(KEY)
    (deleted,) = stack.collect(1)
    expected = {
        ("sqs", False): "ObjectRemoved:Delete",
        ("sqs", True): "ObjectRemoved:DeleteMarkerCreated",
        ("sns", False): "ObjectRemoved:Delete",
        ("sns", True): "ObjectRemoved:DeleteMarkerCreated",
        ("eventbridge", False): "Object Deleted (Permanently Deleted)",
        ("eventbridge", True): "Object Deleted (Delete Marker Created)",
    }
    assert kind(deleted) == expected[stack.route, stack.versioned]
    answers = stack.deliver([deleted])
    assert statuses(stack, answers) in ([], ["withdrawn"])
    assert not stack.has_result(KEY)

    # The create notification again (a redelivery, or one never processed): the version it
    # names may still be readable by its id, but the key has no object.
    stack.deliver([stack.redeliver(created)])
    assert not stack.has_result(KEY)
    if stack.versioned:  # still there behind the marker: what must not be totalled again
        version = put["VersionId"]
        assert stack.clients.s3.head_object(Bucket=stack.bucket, Key=KEY, VersionId=version)


def test_a_deletion_delivered_after_a_newer_upload_leaves_its_total(stack: Stack) -> None:
    first, _ = market("1")
    totalled(stack, first)
    stack.delete(KEY)
    newer, total = market("7.25")
    stack.upload(KEY, newer)
    # In the order they arrive (EventBridge -> SQS keeps none): told apart by what they say.
    # A delete marker's event name holds "Created" too: sorted by what each event is.
    deleted, created = sorted(
        stack.collect(2), key=lambda n: kind(n).startswith(("ObjectCreated", "Object Created"))
    )
    assert "Created" in kind(created)
    assert "Delete" in kind(deleted)

    stack.deliver([created, deleted], batch_size=1)  # the deletion late

    assert stack.result(KEY)["total"] == total


@ROUTES
def test_removing_the_current_version_brings_back_the_previous_total(
    clients: Clients, route: Route
) -> None:
    stack = Stack.create(clients, route, versioned=True)  # only there is a previous version
    first, first_total = market("2")
    totalled(stack, first)
    second, _ = market("3")
    put = stack.upload(KEY, second)
    stack.deliver(stack.collect(1))

    stack.delete(KEY, version_id=put["VersionId"])
    (removed,) = stack.collect(1)
    assert kind(removed) in ("ObjectRemoved:Delete", "Object Deleted (Permanently Deleted)")
    stack.deliver([removed])

    result = stack.result(KEY)
    assert result["total"] == first_total
    assert (
        result["source"]["version_id"]
        == stack.clients.s3.head_object(Bucket=stack.bucket, Key=KEY)["VersionId"]
    )


@ROUTES
def test_removing_a_delete_marker_brings_the_total_back(clients: Clients, route: Route) -> None:
    stack = Stack.create(clients, route, versioned=True)  # only there are delete markers
    body, total = market("5")
    totalled(stack, body)
    marker = stack.delete(KEY)
    stack.deliver(stack.collect(1))
    assert not stack.has_result(KEY)

    stack.delete(KEY, version_id=marker["VersionId"])
    stack.deliver(stack.collect(1))

    assert stack.result(KEY)["total"] == total


def test_the_deletion_event_has_the_shape_the_handler_reads(stack: Stack) -> None:
    body, _ = market("1")
    stack.upload(KEY, body)
    stack.deliver(stack.collect(1))
    stack.delete(KEY)
    (deleted,) = stack.collect(1)

    event = stack.event_for([deleted])
    [item] = object_events(json.loads(json.dumps(event)))
    assert (item.key, item.deleted, item.created) == (KEY, True, False)
    stack.deliver([deleted])
