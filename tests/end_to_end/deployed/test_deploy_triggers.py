"""Every Trigger end to end: uploads through LocalStack's S3 API, delivered by LocalStack (the
bucket's notification, the EventBridge rule, the queue's event source mapping) to the deployed
function running in LocalStack's Lambda, results read back from S3.

``triggered`` is module-scoped and parametrized by Trigger: pytest runs every test of this module
for one Trigger (its stack created by ``sam deploy`` first), then for the next. Each test works
under a prefix of its own, so no test sees another's results or log lines. A new case per trigger
(for example "deleting an input withdraws its result") is one more test function taking
``triggered``; a case that needs the trigger's own channel gets it from ``redeliver``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from tests.end_to_end.deployed.deployed_stacks import TRIGGERS, Deployments
from tests.end_to_end.deployed.triggered import (
    RECORD_FAILED,
    RECORD_PROCESSED,
    RESULT_TIMEOUT,
    Triggered,
    document,
)
from tests.infra.deployed import stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", params=TRIGGERS)
def triggered(request: pytest.FixtureRequest, deployments: Deployments) -> Triggered:
    """The stack of the requested Trigger, deployed."""
    trigger: str = request.param
    deployment = deployments[trigger]
    assert deployment.outputs["Trigger"] == trigger
    return Triggered(deployment, trigger)


def test_an_input_gets_its_total_and_an_update_a_new_one(triggered: Triggered) -> None:
    prefix = triggered.prefix()
    first = triggered.upload(f"{prefix}market_infos.json", document("150.00", "250.00"))
    result = triggered.wait_result(f"{prefix}total_price.json")
    assert (result["status"], result["total"], result["product_count"]) == ("ok", 400, 2)
    assert result["source"]["version_id"] == first["VersionId"]

    second = triggered.upload(f"{prefix}market_infos.json", document("0.1", "0.2", "7"))
    updated = triggered.wait_result(
        f"{prefix}total_price.json",
        lambda found: found["source"]["version_id"] == second["VersionId"],
    )
    assert (updated["status"], updated["total"], updated["product_count"]) == (
        "ok",
        Decimal("7.3"),
        3,
    )


def test_the_users_integration_suite_passes_against_this_stack(triggered: Triggered) -> None:
    # tests/end_to_end/integration is what a user points at their own deployment (README, Deploy).
    # Run as
    # they would run it, in a pytest process of its own, with the stack's name and an endpoint
    # (LocalStack's here, AWS's for them): proof that it works, not only that it is skipped.
    env = triggered.deployment.chain.client_env()
    env["AWS_SAM_STACK_NAME"] = triggered.deployment.name
    suite = "tests/end_to_end/integration"
    command = [sys.executable, "-m", "pytest", suite, "-q", "-p", "no:cacheprovider"]
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    summary = completed.stdout.strip().splitlines()[-1]
    assert summary.startswith("3 passed"), completed.stdout[-4000:]


def test_deleting_an_input_withdraws_its_result(triggered: Triggered) -> None:
    # The template's bucket is versioned: the delete makes a delete marker current, and the
    # trigger delivers the deletion (ObjectRemoved:DeleteMarkerCreated, or EventBridge's
    # Object Deleted) to the function, which removes the result.
    prefix = triggered.prefix()
    key, result_key = f"{prefix}market_infos.json", f"{prefix}total_price.json"
    triggered.upload(key, document("5", "6"))
    assert triggered.wait_result(result_key)["total"] == 11

    triggered.s3.delete_object(Bucket=triggered.deployment.bucket, Key=key)

    def withdrawn() -> list[dict[str, object]] | None:
        lines = [line for line in triggered.records(key) if line["status"] == "withdrawn"]
        return lines if lines and triggered.result(result_key) is None else None

    [line] = stack.wait_for(withdrawn, timeout=RESULT_TIMEOUT, what=f"{result_key} withdrawn")
    assert line["result_key"] == result_key


def test_a_duplicate_event_does_not_rewrite_the_result(triggered: Triggered) -> None:
    prefix = triggered.prefix()
    key, result_key = f"{prefix}market_infos.json", f"{prefix}total_price.json"
    triggered.upload(key, document("1", "2"))
    result = triggered.wait_result(result_key)
    triggered.wait_records(key, 1)
    written = triggered.s3.head_object(Bucket=triggered.deployment.bucket, Key=result_key)

    triggered.redeliver(result["source"])
    second = triggered.wait_records(key, 2)[1]
    assert (second["status"], second["reason"]) == ("skipped", "ResultUpToDate"), second
    again = triggered.s3.head_object(Bucket=triggered.deployment.bucket, Key=result_key)
    assert (again["VersionId"], again["ETag"]) == (written["VersionId"], written["ETag"])
    assert triggered.result(result_key) == result


def test_an_invalid_document_gets_the_invalid_result_and_no_retry(triggered: Triggered) -> None:
    prefix = triggered.prefix()
    key = f"{prefix}market_infos.json"
    triggered.upload(key, b'{"products": [{"price": 1},')
    result = triggered.wait_result(f"{prefix}total_price.json")
    assert (result["status"], result["error"]["code"]) == ("invalid", "InvalidJSON")
    # Answered, not raised: after a later input's result, still one line for this key, no
    # failure line, and nothing in the failure queue.
    later = triggered.prefix()
    triggered.upload(f"{later}market_infos.json", document("3"))
    triggered.wait_result(f"{later}total_price.json")
    assert [line["status"] for line in triggered.records(key)] == ["invalid"]
    assert triggered.records(key, RECORD_FAILED) == []
    sqs = triggered.deployment.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=triggered.deployment.outputs["FailureQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_a_key_that_is_not_an_input_writes_nothing(triggered: Triggered) -> None:
    prefix = triggered.prefix()
    triggered.upload(f"{prefix}notes/readme.json", document("5"))
    triggered.upload(f"{prefix}notes/market_infos.json.bak", document("5"))
    # A later input's result: the one before would have been delivered by now.
    triggered.upload(f"{prefix}later/market_infos.json", document("6"))
    triggered.wait_result(f"{prefix}later/total_price.json")
    listed = triggered.s3.list_objects_v2(Bucket=triggered.deployment.bucket, Prefix=prefix)
    assert sorted(item["Key"] for item in listed.get("Contents", [])) == [
        f"{prefix}later/market_infos.json",
        f"{prefix}later/total_price.json",
        f"{prefix}notes/market_infos.json.bak",
        f"{prefix}notes/readme.json",
    ]
    assert triggered.records(f"{prefix}notes/readme.json") == []


def test_a_burst_of_20_uploads_gets_20_right_totals(triggered: Triggered) -> None:
    prefix = triggered.prefix()
    markets = {f"{prefix}m{index:02}/": (str(index), f"{index}.5") for index in range(20)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda item: triggered.upload(f"{item[0]}market_infos.json", document(*item[1])),
                markets.items(),
            )
        )
    for market, prices in markets.items():
        result = triggered.wait_result(f"{market}total_price.json")
        assert result["status"] == "ok", result
        assert result["total"] == sum(map(Decimal, prices)), (market, result)


@pytest.mark.parametrize("triggered", ["Queue"], indirect=True)
def test_a_transient_failure_comes_back_alone_in_a_partial_batch(triggered: Triggered) -> None:
    """Four messages in one batch: three inputs of the stack's bucket, and one naming an object
    in a bucket that does not exist yet (NoSuchBucket: transient, raised for that message). The
    handler's partial batch response lists only that message: LocalStack's poller deletes the
    three, and the fourth comes back after the visibility timeout, and succeeds once the bucket
    and object exist."""
    sqs = triggered.deployment.client("sqs")
    queue = triggered.deployment.outputs["InputQueueUrl"]
    late_bucket = f"late-{uuid.uuid4().hex[:12]}"
    # The function acts only on its deployment's buckets (SOURCE_BUCKETS): the late bucket is
    # made one of them, as an operator adding a second bucket would, for this test only.
    restore = _serve_also(triggered, late_bucket)
    # The template's 720 s visibility timeout (6x the function's timeout) would keep the failed
    # message away for 12 minutes: 20 s here, for this test's receives only.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "20"})
    try:
        _partial_batch(triggered, queue, late_bucket)
    finally:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "720"})
        restore()


def _serve_also(triggered: Triggered, bucket: str) -> Callable[[], None]:
    """Add ``bucket`` to the deployed function's ``SOURCE_BUCKETS``; returns what puts the
    environment back."""
    lam = triggered.deployment.client("lambda")
    name = triggered.deployment.function_name
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]

    def configure(env: dict[str, str]) -> None:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
        stack.wait_for(
            lambda: (
                True
                if lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus")
                in (None, "Successful")
                else None
            ),
            timeout=60,
            what="the function's configuration updated",
        )

    configure({**variables, "SOURCE_BUCKETS": f"{variables['SOURCE_BUCKETS']},{bucket}"})
    return lambda: configure(variables)


def _partial_batch(triggered: Triggered, queue: str, late_bucket: str) -> None:
    """The body of the test above, with the input queue's visibility timeout shortened."""
    deployment = triggered.deployment
    sqs, lam = deployment.client("sqs"), deployment.client("lambda")
    mapping = lam.list_event_source_mappings(FunctionName=deployment.function_name)[
        "EventSourceMappings"
    ][0]

    def set_enabled(enabled: bool) -> None:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
        wanted = "Enabled" if enabled else "Disabled"
        stack.wait_for(
            lambda: True if lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == wanted
            else None,
            timeout=60,
            what=f"the event source mapping {wanted}",
        )  # fmt: skip

    # Hold the poller while the batch gathers in the queue.
    set_enabled(False)
    prefix = triggered.prefix()
    inputs = [f"{prefix}m{index}/market_infos.json" for index in range(3)]
    for index, key in enumerate(inputs):
        triggered.upload(key, document(str(index + 1)))
    late_body = document("40", "2")
    late_key = f"{prefix}late/market_infos.json"
    late_source = {
        "bucket": late_bucket,
        "key": late_key,
        "etag": hashlib.md5(late_body, usedforsecurity=False).hexdigest(),
        "size": len(late_body),
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(stack.s3_notification(late_source)))

    def waiting() -> bool | None:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return True if attributes["ApproximateNumberOfMessages"] == "4" else None

    stack.wait_for(waiting, timeout=60, what="four messages in the input queue")
    set_enabled(True)

    for index, key in enumerate(inputs):
        result = triggered.wait_result(key.replace("market_infos.json", "total_price.json"))
        assert (result["status"], result["total"]) == ("ok", index + 1)
    # The late message failed, and failed again once it came back: it returns alone.
    failures = stack.wait_for(
        lambda: found if len(found := triggered.records(late_key, RECORD_FAILED)) >= 2 else None,
        timeout=RESULT_TIMEOUT,
        what="the failed message to come back",
    )
    first_batch = failures[0]["function_request_id"]
    processed = {key: triggered.records(key) for key in inputs}
    # The three were in the failed message's batch, processed once each, and never came back.
    batches = {
        key: [line["function_request_id"] for line in lines] for key, lines in processed.items()
    }
    assert batches == {key: [first_batch] for key in inputs}

    # Now the object appears: the next receive succeeds and the message is deleted.
    s3 = triggered.s3
    s3.create_bucket(Bucket=late_bucket)
    s3.put_object(Bucket=late_bucket, Key=late_key, Body=late_body)
    late = triggered.wait_result(f"{prefix}late/total_price.json")
    assert (late["status"], late["total"], late["source"]["bucket"]) == ("ok", 42, late_bucket)
    assert {key: len(triggered.records(key)) for key in inputs} == dict.fromkeys(inputs, 1)

    def drained() -> bool | None:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return True if set(attributes.values()) == {"0"} else None

    stack.wait_for(drained, timeout=60, what="the input queue to drain")
    s3.delete_object(Bucket=late_bucket, Key=late_key)
    s3.delete_bucket(Bucket=late_bucket)


def test_the_log_group_holds_structured_records_and_report_lines(triggered: Triggered) -> None:
    """What the runtime said, read through LocalStack's Logs API: Powertools' structured line
    for each record (service, outcome, the invocation it belongs to) and a REPORT line for each
    invocation, with its Duration."""
    prefix = triggered.prefix()
    key = f"{prefix}market_infos.json"
    triggered.upload(key, document("10", "20"))
    triggered.wait_result(f"{prefix}total_price.json")
    (line,) = triggered.wait_records(key, 1)
    assert line["service"] == "market-totals"
    assert line["function_name"] == triggered.deployment.function_name
    assert (line["level"], line["status"], line["product_count"]) == ("INFO", "ok", 2)
    assert line["result_key"] == f"{prefix}total_price.json"
    request_id = line["function_request_id"]
    report = stack.wait_for(
        lambda: next(
            (found for found in stack.reports(triggered.lines()) if found.request_id == request_id),
            None,
        ),
        timeout=RESULT_TIMEOUT,
        what=f"the REPORT line of {request_id}",
    )
    assert 0 < report.duration_ms <= report.billed_duration_ms
    assert report.memory_size_mb == 512
    # Every invocation has its REPORT, and Powertools marks each record with whether its
    # invocation was a cold start (under Trigger=Queue the first is S3's test event, which
    # logs no record).
    all_lines = triggered.lines()
    started = [text.split()[2] for text in all_lines if text.startswith("START RequestId: ")]
    assert sorted(started) == sorted(found.request_id for found in stack.reports(all_lines))
    records = stack.structured(all_lines, RECORD_PROCESSED)
    assert records
    assert all(isinstance(record["cold_start"], bool) for record in records)
