"""The handler end to end on LocalStack: uploads to LocalStack's S3, the events LocalStack's own
notifications produce (S3 -> SQS, S3 -> EventBridge, and S3 -> SNS -> SQS), delivered as Lambda
would deliver them, and the result object the handler wrote back to LocalStack's S3.

Every scenario runs on each route, in an unversioned and a versioned bucket (``SCENARIOS`` in
conftest.py). Results are read with exact decimals: a float would hide a wrong digit.

LocalStack writes one constant sequencer into every event of a route, so two events of one key
are indistinguishable by sequencer: the ordering scenarios pass only if the handler decides by
the object itself (the version or ETag the event names, and the key's current object), never by
trusting the sequencer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.end_to_end.localstack.lambda_standin import Stack

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef, PutObjectOutputTypeDef

#: The scenarios ``make deploy-test`` does not cover. There the template's bucket (versioned)
#: delivers through the Queue and EventBridge triggers to the deployed function, and duplicates
#: and invalid documents are checked that way (tests/end_to_end/deployed/); here those cases run on
# the
#: other routes and bucket kinds of ``SCENARIOS`` (conftest.py) only.
NOT_DEPLOYED = [
    pytest.param(("sqs", False), id="sqs-unversioned"),
    pytest.param(("eventbridge", False), id="eventbridge-unversioned"),
    pytest.param(("sns", False), id="sns-unversioned"),
    pytest.param(("sns", True), id="sns-versioned"),
]
KEY = "markets/market_a/market_infos.json"
UPLOADS = 20
LARGE_BYTES = 25 * 1024 * 1024


def market(prices: list[str]) -> tuple[bytes, Decimal]:
    """A document with ``prices`` written as given (JSON number literals), and their exact sum."""
    products = ",".join(
        f'{{"name": "product {i}", "price": {price}}}' for i, price in enumerate(prices)
    )
    return f'{{"products": [{products}]}}'.encode(), sum(map(Decimal, prices), Decimal(0))


def large_market(min_bytes: int) -> tuple[bytes, Decimal, int]:
    """A document of at least ``min_bytes`` with two-decimal prices, its exact sum (counted in
    cents, so no float is involved) and its product count."""
    parts: list[str] = []
    size = 0
    cents = 0
    while size < min_bytes:
        i = len(parts)
        whole, fraction = i % 100_000, i % 97
        part = f'{{"name":"product-{i:07d}","price":{whole}.{fraction:02d}}}'
        parts.append(part)
        size += len(part) + 1
        cents += whole * 100 + fraction
    body = ('{"products":[' + ",".join(parts) + "]}").encode()
    return body, Decimal(cents).scaleb(-2), len(parts)


def etag(put: PutObjectOutputTypeDef | HeadObjectOutputTypeDef) -> str:
    """The ETag without its quotes, as events and results carry it."""
    return put["ETag"].strip('"')


def version(stack: Stack, put: PutObjectOutputTypeDef | HeadObjectOutputTypeDef) -> str | None:
    """The ``source.version_id`` a result must carry: the version, or null if unversioned."""
    return put["VersionId"] if stack.versioned else None


def assert_accepted(stack: Stack, answers: list[Any]) -> None:
    """Every invocation succeeded in its invoker's terms: no message to retry (SQS), a summary
    and no exception (EventBridge)."""
    for answer in answers:
        if stack.route == "eventbridge":
            assert isinstance(answer["records"], list), answer
        else:
            assert answer["batchItemFailures"] == [], answer


def assert_result_from(
    stack: Stack, key: str, put: PutObjectOutputTypeDef | HeadObjectOutputTypeDef, total: Decimal
) -> dict[str, Any]:
    """The result beside ``key`` is ``ok``, has ``total`` and names the version ``put`` made."""
    result = stack.result(key)
    assert result["status"] == "ok", result
    assert result["total"] == total
    assert result["source"]["key"] == key
    assert result["source"]["etag"] == etag(put)
    assert result["source"]["version_id"] == version(stack, put)
    return result


def test_one_upload(stack: Stack) -> None:
    body, total = market(["19.99", "0.01", "100", "3.333", "0.000000000000000001"])
    put = stack.upload(KEY, body)
    (notification,) = stack.collect(1)

    assert_accepted(stack, stack.deliver([notification]))

    result = assert_result_from(stack, KEY, put, total)
    assert result["total"] == Decimal("123.333000000000000001")
    assert result["product_count"] == 5


@pytest.mark.parametrize("order", ["AB", "BA"])
def test_the_later_upload_wins_in_either_delivery_order(stack: Stack, order: str) -> None:
    body_a, _ = market(["10.10"])
    body_b, total_b = market(["20.20", "0.02"])
    puts = {"A": stack.upload(KEY, body_a), "B": stack.upload(KEY, body_b)}
    by_etag = {n.etag: n for n in stack.collect(2)}
    events = {name: by_etag[etag(put)] for name, put in puts.items()}
    # The premise: LocalStack's sequencer cannot tell the two events apart.
    assert events["A"].sequencer == events["B"].sequencer

    for name in order:
        assert_accepted(stack, stack.deliver([events[name]]))

    assert_result_from(stack, KEY, puts["B"], total_b)


@pytest.mark.parametrize("delivery", ["shuffled", "concurrent"])
def test_concurrent_uploads_end_with_the_current_object(stack: Stack, delivery: str) -> None:
    documents = [market([f"{n}.{n:02d}", "0.5"]) for n in range(1, UPLOADS + 1)]
    with ThreadPoolExecutor(UPLOADS) as pool:
        puts = list(pool.map(lambda document: stack.upload(KEY, document[0]), documents))
    totals = {etag(put): total for put, (_, total) in zip(puts, documents, strict=True)}
    assert len(totals) == UPLOADS  # each upload is told apart by its ETag
    current = stack.clients.s3.head_object(Bucket=stack.bucket, Key=KEY)
    notifications = stack.collect(UPLOADS, timeout=60)
    assert {n.etag for n in notifications} == set(totals)

    order = stack.shuffled(notifications, seed=UPLOADS)
    deliver = stack.deliver if delivery == "shuffled" else stack.deliver_concurrently
    answers = deliver(order)

    assert_accepted(stack, answers)
    assert_result_from(stack, KEY, current, totals[etag(current)])


@pytest.mark.parametrize("stack", NOT_DEPLOYED, indirect=True)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b'{"products": [{"price": 1.5}', "InvalidJSON", id="truncated"),
        pytest.param(b'{"products": {"price": 1.5}}', "InvalidSchema", id="not-a-list"),
    ],
)
def test_an_invalid_document_is_answered_not_retried(stack: Stack, body: bytes, code: str) -> None:
    put = stack.upload(KEY, body)
    (notification,) = stack.collect(1)

    assert_accepted(stack, stack.deliver([notification]))

    result = stack.result(KEY)
    assert result["status"] == "invalid"
    assert result["error"]["code"] == code
    assert result["source"]["key"] == KEY
    assert result["source"]["etag"] == etag(put)
    assert "total" not in result


def test_a_25_mb_document(stack: Stack) -> None:
    body, total, count = large_market(LARGE_BYTES)
    put = stack.upload(KEY, body)
    (notification,) = stack.collect(1)

    assert_accepted(stack, stack.deliver([notification]))

    result = assert_result_from(stack, KEY, put, total)
    assert result["product_count"] == count
    assert result["source"]["size"] == len(body) >= LARGE_BYTES


@pytest.mark.parametrize(
    "key",
    [
        "market a/m%rkte+1/märkte/market_infos.json",
        "p%20q/a+b c/%41%2F/market_infos.json",
        "日本/€ 1+1=2 ü/market_infos.json",
        "market_infos.json",
    ],
)
def test_awkward_keys(stack: Stack, key: str) -> None:
    body, total = market(["1.10", "2.20"])
    put = stack.upload(key, body)
    (notification,) = stack.collect(1)

    assert_accepted(stack, stack.deliver([notification]))

    assert_result_from(stack, key, put, total)
    listed = stack.clients.s3.list_objects_v2(Bucket=stack.bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted([key, stack.result_key(key)])


@pytest.mark.parametrize("stack", NOT_DEPLOYED, indirect=True)
def test_a_duplicate_delivery_does_not_rewrite_the_result(stack: Stack) -> None:
    body, total = market(["7.77"])
    put = stack.upload(KEY, body)
    (notification,) = stack.collect(1)
    # The first delivery's delete is lost (as when an invocation ends before it): the same
    # message comes back.
    assert_accepted(stack, [stack.invoke([notification], delete=False)])
    first = stack.result_head(KEY)
    first_body = stack.result(KEY)

    again = stack.redeliver(notification)
    assert again.message["Attributes"]["ApproximateReceiveCount"] == "2"
    assert_accepted(stack, stack.deliver([again]))

    second = stack.result_head(KEY)
    assert second["ETag"] == first["ETag"]
    assert second["LastModified"] == first["LastModified"]
    assert stack.result(KEY) == first_body
    assert_result_from(stack, KEY, put, total)
