"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from localrun.invoke import delete_and_tell, put_event

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext


def examples(count: int) -> int:
    """Hypothesis examples for a property test: ``count``, or a tenth of it under mutation
    testing (mutmut sets ``MUTANT_UNDER_TEST``), where the same test runs once per mutant and
    the targeted tests do the killing (docs/mutation.md)."""
    return max(count // 10, 10) if os.environ.get("MUTANT_UNDER_TEST") else count


EVENTS = Path(__file__).resolve().parent.parent / "events"
BUCKET = "market-totals-demo"


def load_event(name: str) -> dict[str, Any]:
    """An event file from ``events/``."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def read_result(client: S3Client, key: str, bucket: str = BUCKET) -> dict[str, Any]:
    """A result object, parsed with exact decimals (a float would hide a wrong digit)."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return document


def upload(
    client: S3Client, key: str, body: bytes, *, sequencer: str | None = None, bucket: str = BUCKET
) -> dict[str, Any]:
    """Put ``body`` at ``key`` and return the single-record event S3 would send for it."""
    put = client.put_object(Bucket=bucket, Key=key, Body=body)
    return put_event(
        bucket,
        key,
        etag=put["ETag"].strip('"'),
        size=len(body),
        sequencer=sequencer,
        version_id=put.get("VersionId"),
    )


def upload_price(
    client: S3Client, price: int, sequencer: str | None, key: str = "market_a/market_infos.json"
) -> dict[str, Any]:
    """Upload a one-product document and return the event S3 would send for that version."""
    body = f'{{"products": [{{"price": {price}}}]}}'.encode()
    return upload(client, key, body, sequencer=sequencer)


def first_record(event: dict[str, Any], context: LocalContext) -> dict[str, Any]:
    """The handler's summary of the first record of ``event``."""
    from handler.app import lambda_handler

    record: dict[str, Any] = lambda_handler(event, context)["records"][0]
    return record


# --- The other shapes in which S3 work reaches the function, as AWS sends them ---------------


def sqs_event(*bodies: str, queue: str = "market-totals-queue") -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping builds it, one message per body; message
    ids are ``m0``, ``m1``, ..."""
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"receipt-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795000000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795000000001",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def sns_envelope(message: dict[str, Any]) -> dict[str, Any]:
    """What S3 -> SNS -> SQS puts in a message body (raw message delivery off)."""
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:market-totals-topic",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-21T12:00:00.123Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def eventbridge_event(notification: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for the upload a notification describes
    (one record): the same fields, EventBridge's names, a lowercase sequencer as AWS sends."""
    record = notification["Records"][0]
    obj = record["s3"]["object"]
    detail_object: dict[str, Any] = {"key": obj["key"], "size": obj["size"], "etag": obj["eTag"]}
    if "versionId" in obj:
        detail_object["version-id"] = obj["versionId"]
    if "sequencer" in obj:
        detail_object["sequencer"] = obj["sequencer"].lower()
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-21T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{record['s3']['bucket']['name']}"],
        "detail": {
            "version": "0",
            "bucket": {"name": record["s3"]["bucket"]["name"]},
            "object": detail_object,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def batch_event(
    key: str, *, bucket: str = BUCKET, version_id: str | None = None, schema: str = "2.0"
) -> dict[str, Any]:
    """An S3 Batch Operations invocation with one task (the key URL-encoded, as in manifests)."""
    task: dict[str, Any] = {
        "taskId": "dGFza2lkZ29lc2hlcmUK",
        "s3Key": quote_plus(key, safe="/"),
        "s3VersionId": version_id,
    }
    if schema == "1.0":
        task["s3BucketArn"] = f"arn:aws:s3:::{bucket}"
    else:
        task["s3Bucket"] = bucket
    job: dict[str, Any] = {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"}
    if schema == "2.0":
        job["userArguments"] = {}
    return {
        "invocationSchemaVersion": schema,
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": job,
        "tasks": [task],
    }


def delete(
    client: S3Client,
    key: str,
    *,
    sequencer: str | None = None,
    version_id: str | None = None,
    bucket: str = BUCKET,
) -> dict[str, Any]:
    """Delete ``key`` (only ``version_id`` where given) and return the notification S3 sends."""
    return delete_and_tell(client, bucket, key, version_id=version_id, sequencer=sequencer)


def version_of(event: dict[str, Any]) -> str:
    """The version id a single-record notification names."""
    version: str = event["Records"][0]["s3"]["object"]["versionId"]
    return version


def emf_metrics(stdout: str) -> dict[str, tuple[Any, str]]:
    """The metrics of the EMF documents Powertools printed: name -> (value, unit)."""
    found: dict[str, tuple[Any, str]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                found[metric["Name"]] = (document[metric["Name"]], metric["Unit"])
    return found
