"""The custom resource that attaches a stack's trigger to an existing bucket: its pure merge,
and its handler against moto's S3 (another notification must survive create and delete)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from bucket_notifications import app

PREFIX = "market-totals-dev-"
OTHER_QUEUE: dict[str, Any] = {
    "Id": "other-team-orders",
    "QueueArn": "arn:aws:sqs:us-east-1:123456789012:orders",
    "Events": ["s3:ObjectCreated:*"],
    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "orders/"}]}},
}
OWN_LAMBDA: dict[str, Any] = {
    "Id": f"{PREFIX}created",
    "LambdaFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:totals",
    "Events": ["s3:ObjectCreated:*"],
    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "market_infos.json"}]}},
}


# --- The pure merge ----------------------------------------------------------------------------


def test_merge_keeps_other_entries_and_replaces_only_its_own() -> None:
    stale = {**OWN_LAMBDA, "Events": ["s3:ObjectRemoved:*"]}
    current = {"QueueConfigurations": [OTHER_QUEUE], "LambdaFunctionConfigurations": [stale]}
    result = app.merged(current, PREFIX, {"LambdaFunctionConfigurations": [OWN_LAMBDA]}, False)
    assert result == {
        "QueueConfigurations": [OTHER_QUEUE],
        "LambdaFunctionConfigurations": [OWN_LAMBDA],
    }


def test_merge_refuses_an_entry_outside_its_prefix() -> None:
    with pytest.raises(ValueError, match="a name without"):
        app.merged({}, PREFIX, {"QueueConfigurations": [OTHER_QUEUE]}, False)


def test_a_stack_whose_name_starts_another_stacks_keeps_off_its_entries() -> None:
    # samconfig.toml's two environments: stacks market-totals (prod) and market-totals-dev on
    # one bucket (other suffixes). The prod stack's prefix "market-totals-" starts the dev
    # stack's Ids too; its update and its delete must leave them.
    prod, dev = "market-totals-", "market-totals-dev-"
    dev_entry = {**OWN_LAMBDA, "Id": f"{dev}inputs"}
    prod_entry = {**OWN_LAMBDA, "Id": f"{prod}inputs", "LambdaFunctionArn": "arn:prod"}
    current = {"LambdaFunctionConfigurations": [dev_entry, prod_entry]}
    assert app.removed(current, prod, turned_eventbridge_on=False) == {
        "LambdaFunctionConfigurations": [dev_entry]
    }
    updated = {**prod_entry, "Events": ["s3:ObjectCreated:*"]}
    assert app.merged(current, prod, {"LambdaFunctionConfigurations": [updated]}, False) == {
        "LambdaFunctionConfigurations": [dev_entry, updated]
    }
    assert app.removed(current, dev, turned_eventbridge_on=False) == {
        "LambdaFunctionConfigurations": [prod_entry]
    }
    with pytest.raises(ValueError, match="a name without"):
        app.merged({}, prod, {"LambdaFunctionConfigurations": [dev_entry]}, False)


def test_removal_leaves_others_and_eventbridge_unless_it_turned_it_on() -> None:
    current = {
        "QueueConfigurations": [OTHER_QUEUE],
        "LambdaFunctionConfigurations": [OWN_LAMBDA],
        "EventBridgeConfiguration": {},
    }
    kept = {"QueueConfigurations": [OTHER_QUEUE], "EventBridgeConfiguration": {}}
    assert app.removed(current, PREFIX, turned_eventbridge_on=False) == kept
    assert app.removed(current, PREFIX, turned_eventbridge_on=True) == {
        "QueueConfigurations": [OTHER_QUEUE]
    }


# --- The handler, on moto ----------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="existing")
        sqs = boto3.client("sqs")
        for name in ("orders", "inputs"):
            sqs.create_queue(QueueName=name)
        client.put_bucket_notification_configuration(
            Bucket="existing",
            NotificationConfiguration={"QueueConfigurations": [OTHER_QUEUE]},  # type: ignore[list-item]
        )
        yield client


def event(request: str, physical: str = "", **props: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResponseURL": "https://cloudformation.example/response",
        "StackId": "stack",
        "RequestId": "request",
        "LogicalResourceId": "BucketNotifications",
        "PhysicalResourceId": physical,
        "ResourceProperties": {"BucketName": "existing", "IdPrefix": PREFIX, **props},
    }


def configuration(s3: Any) -> dict[str, Any]:
    response = s3.get_bucket_notification_configuration(Bucket="existing")
    response.pop("ResponseMetadata")
    return dict(response)


OWN_QUEUE: dict[str, Any] = {
    "Id": f"{PREFIX}created",
    "QueueArn": "arn:aws:sqs:us-east-1:123456789012:inputs",
    "Events": ["s3:ObjectCreated:*"],
    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "market_infos.json"}]}},
}


def run(body: dict[str, Any]) -> dict[str, Any]:
    """The handler's answer to CloudFormation (its one PUT to the response URL)."""
    with mock.patch("urllib.request.urlopen") as urlopen:
        app.handler(body, None)
    (call,) = urlopen.call_args_list
    answer: dict[str, Any] = json.loads(call.args[0].data)
    return answer


def test_create_then_delete_leaves_the_other_notification(s3: Any) -> None:
    created = run(event("Create", QueueConfigurations=[OWN_QUEUE]))
    assert created["Status"] == "SUCCESS", created
    ids = [q["Id"] for q in configuration(s3)["QueueConfigurations"]]
    assert ids == ["other-team-orders", f"{PREFIX}created"]
    deleted = run(event("Delete", created["PhysicalResourceId"], QueueConfigurations=[OWN_QUEUE]))
    assert deleted["Status"] == "SUCCESS", deleted
    assert [q["Id"] for q in configuration(s3)["QueueConfigurations"]] == ["other-team-orders"]


class RecordingS3:
    """One bucket's notification configuration, read and written whole, as S3 does. (moto
    accepts EventBridgeConfiguration but never returns it, so EventBridge is tested here.)"""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.calls: list[str] = []

    def get_bucket_notification_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("get")
        assert kwargs == {"Bucket": "existing", "ExpectedBucketOwner": "123456789012"}
        return {**self.config, "ResponseMetadata": {}}

    def put_bucket_notification_configuration(self, **kwargs: Any) -> None:
        self.calls.append("put")
        assert kwargs["ExpectedBucketOwner"] == "123456789012"
        self.config = kwargs["NotificationConfiguration"]


def test_eventbridge_it_turned_on_goes_on_delete_one_found_on_stays() -> None:
    props = {"EventBridge": "true", "ExpectedBucketOwner": "123456789012"}
    fake = RecordingS3({"QueueConfigurations": [OTHER_QUEUE]})
    physical = app.apply(event("Create", **props), fake)
    assert fake.config == {"QueueConfigurations": [OTHER_QUEUE], "EventBridgeConfiguration": {}}
    app.apply(event("Delete", physical, **props), fake)
    assert fake.config == {"QueueConfigurations": [OTHER_QUEUE]}
    assert fake.calls == ["get", "put", "get", "put"]  # two S3 calls per request, no more
    # Already on before the stack: left on after it.
    fake = RecordingS3({"QueueConfigurations": [OTHER_QUEUE], "EventBridgeConfiguration": {}})
    physical = app.apply(event("Create", **props), fake)
    app.apply(event("Delete", physical, **props), fake)
    assert fake.config == {"QueueConfigurations": [OTHER_QUEUE], "EventBridgeConfiguration": {}}


def test_a_failure_is_answered_failed_never_left_waiting(s3: Any) -> None:
    answer = run(
        {
            **event("Create"),
            "ResourceProperties": {"BucketName": "no-such-bucket", "IdPrefix": PREFIX},
        }
    )
    assert answer["Status"] == "FAILED"
    assert "NoSuchBucket" in answer["Reason"]
