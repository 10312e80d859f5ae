# mypy: disallow-subclassing-any=False
"""CloudFormation's custom resource protocol, for LocalStack's community CloudFormation.

Why: LocalStack 2026.3's community edition has no provider for
``AWS::CloudFormation::CustomResource`` (``Custom::*``): its CloudFormation marks such a resource
``CREATE_COMPLETE`` without calling anything ("not supported but was deployed as a fallback").
The template's
``Custom::BucketNotifications`` would then never run, and a stack on an existing bucket would
deploy without a trigger. This plugin, loaded by the deployed suite's LocalStack only (the chain
puts this directory on its ``PYTHONPATH``; the ``.dist-info`` beside it names the entry point),
does what AWS CloudFormation does, and no more:

- it sends the request (``RequestType``, ``ResponseURL``, ``StackId``, ``RequestId``,
  ``ResourceType``, ``LogicalResourceId``, ``PhysicalResourceId`` on update and delete,
  ``ResourceProperties``, ``OldResourceProperties`` on update) to the function named by
  ``ServiceToken``, invoked asynchronously, as CloudFormation does;
- ``ResponseURL`` is a pre-signed S3 PUT URL (CloudFormation's is one too), of a bucket of
  LocalStack's own S3 at the address the function's container reaches;
- it waits for the response object there and takes its ``Status``, ``Reason`` and
  ``PhysicalResourceId``: ``FAILED`` fails the resource, and the stack, with the reason.

The function under test is the template's own, running in LocalStack's Lambda: only the
CloudFormation side of the exchange is this file.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

import boto3

# (mypy finds tests/infra under the name, not LocalStack: these are unchecked.)
from localstack import config  # type: ignore[import-not-found,attr-defined,unused-ignore]
from localstack.services.cloudformation.resource_provider import (  # type: ignore[import-not-found]
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)
from localstack.services.lambda_.networking import (  # type: ignore[import-not-found]
    get_main_endpoint_from_container,
)

#: Where the responses go (a bucket of LocalStack's S3, made on first use).
RESPONSE_BUCKET = "cloudformation-custom-resource-responses"
#: CloudFormation waits up to an hour; a cold container on 2 busy cores needs a few minutes.
RESPONSE_TIMEOUT = 180.0
#: The physical id each resource answered, by (stack, logical id): LocalStack hands a provider
#: the properties on delete, not the physical id, and CloudFormation must send it back.
PHYSICAL_IDS: dict[tuple[str, str], str] = {}


def _request(request: Any, request_type: str, response_url: str, request_id: str) -> dict[str, Any]:
    """The event CloudFormation sends to a custom resource's function."""
    properties = dict(request.desired_state)
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": response_url,
        "StackId": request.stack_id,
        "RequestId": request_id,
        "ResourceType": request.resource_type,
        "LogicalResourceId": request.logical_resource_id,
        "ResourceProperties": properties,
    }
    if request_type != "Create":
        key = (request.stack_id, request.logical_resource_id)
        event["PhysicalResourceId"] = PHYSICAL_IDS.get(key, request.logical_resource_id)
    if request_type == "Update":
        event["OldResourceProperties"] = dict(request.previous_state or {})
    return event


def _exchange(request: Any, request_type: str) -> dict[str, Any]:
    """Invoke the ServiceToken with the request; the response the function PUT at ResponseURL."""
    s3 = request.aws_client_factory.s3
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=RESPONSE_BUCKET)
    request_id = str(uuid.uuid4())
    key = f"{request.logical_resource_id}/{request_id}"
    # Signed for the address the function's container reaches LocalStack at.
    reachable = boto3.client(
        "s3",
        endpoint_url=f"http://{get_main_endpoint_from_container()}:{config.GATEWAY_LISTEN[0].port}",
        region_name=request.region_name,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    response_url = reachable.generate_presigned_url(
        "put_object", Params={"Bucket": RESPONSE_BUCKET, "Key": key}, ExpiresIn=3600
    )
    event = _request(request, request_type, response_url, request_id)
    request.aws_client_factory.lambda_.invoke(
        FunctionName=event["ServiceToken"],
        InvocationType="Event",
        Payload=json.dumps(event).encode(),
    )
    deadline = time.monotonic() + RESPONSE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            body = s3.get_object(Bucket=RESPONSE_BUCKET, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            time.sleep(1)
            continue
        response: dict[str, Any] = json.loads(body)
        return response
    return {"Status": "FAILED", "Reason": f"no response in {RESPONSE_TIMEOUT:.0f} s"}


def _progress(request: Any, request_type: str) -> Any:
    response = _exchange(request, request_type)
    if response.get("Status") != "SUCCESS":
        return ProgressEvent(
            status=OperationStatus.FAILED,
            resource_model={},
            message=str(response.get("Reason") or "the custom resource answered FAILED"),
        )
    key = (request.stack_id, request.logical_resource_id)
    physical = str(response.get("PhysicalResourceId") or request.logical_resource_id)
    if request_type == "Delete":
        PHYSICAL_IDS.pop(key, None)
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})
    PHYSICAL_IDS[key] = physical
    model = {**dict(request.desired_state), "PhysicalResourceId": physical}
    model.update(response.get("Data") or {})
    return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


class CustomResourceProvider(ResourceProvider):
    """Create, update and delete through the resource's own function."""

    TYPE = "AWS::CloudFormation::CustomResource"
    SCHEMA: dict[str, Any] = {  # noqa: RUF012 - read by LocalStack, never changed
        "typeName": TYPE,
        "primaryIdentifier": ["/properties/PhysicalResourceId"],
        "properties": {},
    }

    def create(self, request: ResourceRequest) -> ProgressEvent:
        return _progress(request, "Create")

    def update(self, request: ResourceRequest) -> ProgressEvent:
        return _progress(request, "Update")

    def delete(self, request: ResourceRequest) -> ProgressEvent:
        return _progress(request, "Delete")

    def read(self, request: ResourceRequest) -> ProgressEvent:
        raise NotImplementedError


class CustomResourceProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::CloudFormation::CustomResource"

    def __init__(self) -> None:
        self.factory: type[ResourceProvider] | None = None

    def load(self) -> None:
        self.factory = CustomResourceProvider
