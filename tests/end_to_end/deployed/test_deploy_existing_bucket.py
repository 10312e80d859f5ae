"""``ExistingBucketName`` on LocalStack, for every Trigger: a bucket made before the stack, with
another team's queue notification already set, served by a stack that creates no bucket.

The stack's ``Custom::BucketNotifications`` (src/bucket_notifications/app.py) runs in
LocalStack's Lambda as CloudFormation's custom resource; LocalStack's community CloudFormation
has no custom resources, so the chain loads the protocol as a plugin
(tests/infra/deployed/localstack_plugins). After the deploy: an upload gets its total, the other
notification is there as it was and still delivers. After ``sam delete``: the other notification
is still there and delivers, the stack's own entry (and the EventBridge delivery it turned on)
is gone, and the bucket keeps its objects.

The three stacks are deployed one after the other (LocalStack's SAM transform cannot make two
change sets at once) and deleted at the same time.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.end_to_end.deployed.deployed_stacks import TRIGGERS, Deployment, Deployments
from tests.end_to_end.deployed.triggered import RESULT_TIMEOUT, Triggered, document
from tests.infra.deployed import stack

#: Where the other team's notification listens: keys under exports/ ending with .csv.
OTHER_PREFIX, OTHER_SUFFIX = "exports/", ".csv"


@dataclass
class Adopted:
    """A bucket with another notification, and the stack deployed onto it."""

    deployment: Deployment
    bucket: str
    other_queue_url: str
    other_entry: dict[str, Any]

    @property
    def s3(self) -> Any:
        return self.deployment.client("s3")

    def notification(self) -> dict[str, Any]:
        found = self.s3.get_bucket_notification_configuration(Bucket=self.bucket)
        found.pop("ResponseMetadata", None)
        return dict(found)

    def others_still_deliver(self) -> None:
        """An object the other notification matches reaches the other queue."""
        key = f"{OTHER_PREFIX}{uuid.uuid4().hex[:8]}{OTHER_SUFFIX}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"market,total\n")
        sqs = self.deployment.client("sqs")

        def delivered() -> bool | None:
            messages = sqs.receive_message(
                QueueUrl=self.other_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                sqs.delete_message(
                    QueueUrl=self.other_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                records = json.loads(message["Body"]).get("Records", [])
                if any(record["s3"]["object"]["key"] == key for record in records):
                    return True
            return None

        stack.wait_for(delivered, timeout=RESULT_TIMEOUT, what=f"{key} in the other queue")


def _bucket_with_another_notification(deployments: Deployments, trigger: str) -> Adopted:
    """A bucket (not versioned, no policy: as a team's bucket may be) whose notification
    configuration already sends exports/*.csv creations to a queue of its own."""
    name = f"mt-existing-{trigger.lower()}-{deployments.run}"
    deployment = Deployment(
        deployments.chain, f"mt-ex-{trigger.lower()}-{deployments.run}", trigger
    )
    s3, sqs = deployment.client("s3"), deployment.client("sqs")
    s3.create_bucket(Bucket=name)
    queue_url = sqs.create_queue(QueueName=f"{name}-other")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{name}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    entry = {
        "Id": "another-team-exports",
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {
            "Key": {
                "FilterRules": [
                    {"Name": "prefix", "Value": OTHER_PREFIX},
                    {"Name": "suffix", "Value": OTHER_SUFFIX},
                ]
            }
        },
    }
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"QueueConfigurations": [entry]}
    )
    adopted = Adopted(deployment, name, queue_url, entry)
    # As S3 reads it back (the form it gives the filter's rules): what must stay as it is.
    [adopted.other_entry] = _others(adopted.notification())
    return adopted


def _deploy(adopted: Adopted) -> None:
    try:
        adopted.deployment.deploy(ExistingBucketName=adopted.bucket)
    except stack.DeployError as error:
        raise pytest.fail.Exception(
            f"{adopted.deployment.trigger}: {error}", pytrace=False
        ) from None


@pytest.fixture(scope="module")
def adopted(deployments: Deployments) -> dict[str, Adopted]:
    """One stack per Trigger, each on a bucket of its own made first."""
    found = {
        trigger: _bucket_with_another_notification(deployments, trigger) for trigger in TRIGGERS
    }
    # One after the other: LocalStack's SAM transform sets and then removes the process-wide
    # AWS_DEFAULT_REGION around each change set, so two at once fail ("AWS Region cannot be
    # found").
    for each in found.values():
        _deploy(each)
    return found


def _own_entries(configuration: dict[str, Any], stack_name: str) -> list[dict[str, Any]]:
    return [
        entry
        for name in ("QueueConfigurations", "LambdaFunctionConfigurations", "TopicConfigurations")
        for entry in configuration.get(name, [])
        if entry["Id"].startswith(f"{stack_name}-")
    ]


def _others(configuration: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e for e in configuration.get("QueueConfigurations", []) if e["Id"].startswith("another")
    ]


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_a_stack_on_an_existing_bucket_totals_uploads_and_keeps_the_other_notification(
    adopted: dict[str, Adopted], trigger: str
) -> None:
    this = adopted[trigger]
    deployment = this.deployment
    assert deployment.outputs["BucketName"] == this.bucket
    resources = {
        summary["ResourceType"]
        for summary in deployment.client("cloudformation").list_stack_resources(
            StackName=deployment.name
        )["StackResourceSummaries"]
    }
    assert "AWS::S3::Bucket" not in resources

    configuration = this.notification()
    assert _others(configuration) == [this.other_entry]
    own = _own_entries(configuration, deployment.name)
    if trigger == "EventBridge":
        assert own == []
        assert "EventBridgeConfiguration" in configuration
    else:
        assert [entry["Id"] for entry in own] == [f"{deployment.name}-inputs"]
        assert "EventBridgeConfiguration" not in configuration

    triggered = Triggered(deployment, trigger)
    prefix = triggered.prefix()
    triggered.upload(f"{prefix}market_infos.json", document("150.00", "250.00"))
    result = triggered.wait_result(f"{prefix}total_price.json")
    assert (result["status"], result["total"], result["source"]["bucket"]) == (
        "ok",
        400,
        this.bucket,
    )
    this.others_still_deliver()


def test_sam_delete_removes_only_the_stacks_own_notification(
    adopted: dict[str, Adopted],
) -> None:
    with ThreadPoolExecutor(max_workers=len(adopted)) as pool:
        list(
            pool.map(
                lambda this: stack.delete(this.deployment.chain, this.deployment.name),
                adopted.values(),
            )
        )
    summaries = adopted["Queue"].deployment.client("cloudformation").list_stacks()
    statuses = {s["StackName"]: s["StackStatus"] for s in summaries["StackSummaries"]}
    for trigger, this in adopted.items():
        assert statuses[this.deployment.name] == "DELETE_COMPLETE", trigger
        configuration = this.notification()
        assert _others(configuration) == [this.other_entry], trigger
        assert _own_entries(configuration, this.deployment.name) == [], trigger
        # Off before the stack turned it on: off again.
        assert "EventBridgeConfiguration" not in configuration, trigger
        this.others_still_deliver()
        # The bucket and its objects stay: the input and its result among them.
        keys = [
            item["Key"]
            for page in this.s3.get_paginator("list_objects_v2").paginate(Bucket=this.bucket)
            for item in page.get("Contents", [])
        ]
        assert any(key.endswith("/market_infos.json") for key in keys), (trigger, keys)
        assert any(key.endswith("/total_price.json") for key in keys), (trigger, keys)
        for key in keys:
            this.s3.delete_object(Bucket=this.bucket, Key=key)
        this.s3.delete_bucket(Bucket=this.bucket)
        this.deployment.client("sqs").delete_queue(QueueUrl=this.other_queue_url)
