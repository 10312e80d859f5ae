"""The function on events we did not write: ``sam local generate-event``'s, checked against
Powertools' own models of each source (pydantic), and run end to end on moto.

Hand-made events share our assumptions; these do not. The SAM CLI lives in ``.venv-tools``
(``make test`` installs it); where it is missing these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    S3BatchOperationModel,
    S3EventNotificationEventBridgeModel,
    S3Model,
    S3SqsEventNotificationModel,
    SqsModel,
)
from pydantic import BaseModel

from handler.app import lambda_handler
from handler.events import UnknownEvent, shape_of
from localrun.invoke import Upload, rewrite_event
from tests.support import (
    BUCKET,
    batch_event,
    eventbridge_event,
    load_event,
    read_result,
    sns_envelope,
    sqs_event,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from localrun.invoke import LocalContext

ROOT = Path(__file__).resolve().parents[3]
SAM = ROOT / ".venv-tools" / "bin" / "sam"
KEYS = ["market_a/market_infos.json", "market a/m%rkte+1/märkte/market_infos.json"]
DOC = b'{"products": [{"price": 150}, {"price": 250}]}'


def generate(*args: str) -> dict[str, Any]:
    """``sam local generate-event ARGS`` as the SAM CLI writes it."""
    assert SAM.is_file(), f"{SAM} is missing: `make .venv-tools/.installed` installs the SAM CLI"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    out = subprocess.run(
        [str(SAM), "local", "generate-event", *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    event: dict[str, Any] = json.loads(out.stdout)
    return event


def uploaded(s3: S3Client, key: str) -> dict[tuple[str, str], Upload]:
    """Put the demo document at ``key``, and say what S3's event of that upload carries."""
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=DOC)
    upload = Upload(put["ETag"].strip('"'), len(DOC), put.get("VersionId"), "0062A1B2C3D4E5F601")
    return {(BUCKET, key): upload}


def total_at(s3: S3Client, key: str) -> Any:
    return read_result(s3, key.rsplit("/", 1)[0] + "/total_price.json")["total"]


@pytest.mark.parametrize("key", KEYS)
def test_sam_s3_put_event(s3: S3Client, context: LocalContext, key: str) -> None:
    generated = generate("s3", "put", "--bucket", BUCKET, "--key", key)
    S3Model.model_validate(generated)
    # SAM writes placeholders for what only the upload knows (eTag, size, sequencer); S3 would
    # send the upload's own. The key stays as SAM encoded it.
    event = rewrite_event(generated, uploaded(s3, key))
    assert (
        event["Records"][0]["s3"]["object"]["key"] == generated["Records"][0]["s3"]["object"]["key"]
    )

    assert lambda_handler(event, context)["records"][0]["status"] == "ok"
    assert total_at(s3, key) == 400


@pytest.mark.usefixtures("versioned")
@pytest.mark.parametrize("key", KEYS)
def test_sam_s3_batch_invocation_event(s3: S3Client, context: LocalContext, key: str) -> None:
    event = generate(
        "s3", "batch-invocation", "--bucket-arn", f"arn:aws:s3:::{BUCKET}", "--key", key
    )
    S3BatchOperationModel.model_validate(event)
    # SAM names version "1"; a manifest with versions names the real one.
    event["tasks"][0]["s3VersionId"] = uploaded(s3, key)[BUCKET, key].version_id

    answer = lambda_handler(event, context)

    assert answer["results"][0]["resultCode"] == "Succeeded", answer
    assert total_at(s3, key) == 400


def test_sam_sqs_event_carrying_an_s3_notification(s3: S3Client, context: LocalContext) -> None:
    key = KEYS[1]
    notification = rewrite_event(
        generate("s3", "put", "--bucket", BUCKET, "--key", key), uploaded(s3, key)
    )
    # The SAM CLI pastes --body into its template unescaped: give it a placeholder.
    event = generate("sqs", "receive-message", "--body", "placeholder")
    event["Records"][0]["body"] = json.dumps(notification)
    S3SqsEventNotificationModel.model_validate(event)

    assert lambda_handler(event, context) == {"batchItemFailures": []}
    assert total_at(s3, key) == 400


def test_sam_sns_envelope_inside_an_sqs_message(s3: S3Client, context: LocalContext) -> None:
    key = KEYS[1]
    notification = rewrite_event(
        generate("s3", "put", "--bucket", BUCKET, "--key", key), uploaded(s3, key)
    )
    sns = generate("sns", "notification", "--message", "placeholder")
    envelope = sns["Records"][0]["Sns"]
    envelope["Message"] = json.dumps(notification)
    event = generate("sqs", "receive-message", "--body", "placeholder")
    event["Records"][0]["body"] = json.dumps(envelope)
    SqsModel.model_validate(event)

    assert lambda_handler(event, context) == {"batchItemFailures": []}
    assert total_at(s3, key) == 400


@pytest.mark.parametrize("bucket_kind", ["unversioned", "versioned"])
@pytest.mark.parametrize("key", KEYS)
def test_sam_s3_delete_event_withdraws_the_result(
    s3: S3Client, context: LocalContext, key: str, bucket_kind: str
) -> None:
    if bucket_kind == "versioned":
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    created = rewrite_event(
        generate("s3", "put", "--bucket", BUCKET, "--key", key), uploaded(s3, key)
    )
    assert lambda_handler(created, context)["records"][0]["status"] == "ok"
    s3.delete_object(Bucket=BUCKET, Key=key)
    generated = generate("s3", "delete", "--bucket", BUCKET, "--key", key)
    S3Model.model_validate(generated)
    assert generated["Records"][0]["eventName"] == "ObjectRemoved:Delete"

    assert lambda_handler(generated, context)["records"][0]["status"] == "withdrawn"
    result = key.rsplit("/", 1)[0] + "/total_price.json"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=result)["KeyCount"] == 0
    # The upload's create event again, late: no total for a key that has no object.
    assert lambda_handler(created, context)["records"][0]["reason"] == "SourceDeleted"


def test_sns_invoking_the_function_directly_is_refused(context: LocalContext) -> None:
    event = generate("sns", "notification", "--message", "placeholder")
    # Not SnsModel.model_validate(event): SAM's sample says "EXAMPLE" where Powertools' model
    # wants URLs (SigningCertUrl, UnsubscribeUrl). A difference between the two, not ours.
    assert event["Records"][0]["EventSource"] == "aws:sns"
    with pytest.raises(UnknownEvent, match="aws:sns"):
        lambda_handler(event, context)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("put.json", S3Model),
        ("put-many.json", S3Model),
        ("put-encoded-key.json", S3Model),
        ("delete.json", S3Model),
        ("delete-marker.json", S3Model),
        ("delete-version.json", S3Model),
        ("lifecycle-expiration-delete.json", S3Model),
        ("lifecycle-expiration-delete-marker.json", S3Model),
        ("sqs-s3-delete.json", SqsModel),
        ("eventbridge-object-deleted.json", S3EventNotificationEventBridgeModel),
        ("eventbridge-lifecycle-expiration.json", S3EventNotificationEventBridgeModel),
        ("sqs-s3.json", SqsModel),
        ("sqs-sns-s3.json", SqsModel),
        ("eventbridge-object-created.json", S3EventNotificationEventBridgeModel),
        ("batch-operations-1.0.json", S3BatchOperationModel),
        ("batch-operations-2.0.json", S3BatchOperationModel),
    ],
)
def test_our_sample_events_have_the_shape_powertools_models(
    name: str, model: type[BaseModel]
) -> None:
    event = load_event(name)
    model.model_validate(event)
    shape_of(event)  # and the function takes them


def test_the_events_our_tests_build_have_the_shape_powertools_models() -> None:
    notification = {
        "Records": [{**load_event("put.json")["Records"][0]}],
    }
    S3SqsEventNotificationModel.model_validate(sqs_event(json.dumps(notification)))
    S3EventNotificationEventBridgeModel.model_validate(eventbridge_event(notification))
    SqsModel.model_validate(sqs_event(json.dumps(sns_envelope(notification))))
    for schema in ("1.0", "2.0"):
        S3BatchOperationModel.model_validate(batch_event("a b/market_infos.json", schema=schema))
