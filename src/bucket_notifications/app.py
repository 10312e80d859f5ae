"""Custom resource: attach this stack's trigger to a bucket the stack did not create.

CloudFormation can set a bucket's notifications only on a bucket it creates, and S3 has one
notification configuration per bucket, written whole (PutBucketNotificationConfiguration). So a
stack that serves an existing bucket reads the configuration, replaces only the entries whose
``Id`` is its own prefix and a name (``is_own``), and writes it back; on delete it removes only
those. Every other entry (another team's queue, another stack's function) survives. This is the
merge AWS CDK's BucketNotifications handler does for imported buckets.

EventBridge delivery (``EventBridgeConfiguration``) is one switch for the whole bucket: it is
turned on when the stack asks for it and turned off on delete only if it was off before the
stack turned it on (recorded in the physical resource id, which CloudFormation hands back on
update and delete).

Two S3 calls per event (get, put), both with ``ExpectedBucketOwner``. Pure merge functions
first; the handler and its CloudFormation response after.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import boto3

LOG = logging.getLogger(__name__)

# The destination lists of a notification configuration, each entry with an ``Id``.
DESTINATION_LISTS = (
    "TopicConfigurations",
    "QueueConfigurations",
    "LambdaFunctionConfigurations",
)
EVENTBRIDGE = "EventBridgeConfiguration"
# Suffix of the physical id when this resource turned EventBridge delivery on.
TURNED_ON = "+eventbridge"

Config = dict[str, Any]


def is_own(entry_id: object, prefix: str) -> bool:
    """Whether an entry Id is ``prefix`` (``<stack name>-``) and a name without a hyphen.

    Not a bare ``startswith``: stack names have hyphens, so the prefix of a stack named
    ``market-totals`` also starts the Ids of ``market-totals-dev`` (samconfig.toml's two
    environments), whose entries it must never replace or remove. A stack name has no other
    characters than letters, digits and hyphens, so the stack of an Id is everything before its
    last hyphen, and belongs to one stack only."""
    text = str(entry_id or "")
    return text.startswith(prefix) and "-" not in text[len(prefix) :]


def without_own(config: Config, prefix: str) -> Config:
    """``config`` less every destination entry of this stack (``is_own``)."""
    kept: Config = {}
    for name in DESTINATION_LISTS:
        entries = [e for e in config.get(name, []) if not is_own(e.get("Id"), prefix)]
        if entries:
            kept[name] = entries
    if EVENTBRIDGE in config:
        kept[EVENTBRIDGE] = config[EVENTBRIDGE]
    return kept


def merged(config: Config, prefix: str, own: Config, eventbridge: bool) -> Config:
    """``config`` with this stack's entries (``own``, each Id under ``prefix``) in place of the
    ones it had, and EventBridge delivery on where asked (never turned off here)."""
    for name in DESTINATION_LISTS:
        for entry in own.get(name, []):
            if not is_own(entry.get("Id"), prefix):
                raise ValueError(
                    f"entry Id {entry.get('Id')!r} is not {prefix!r} and a name without '-'"
                )
    result = without_own(config, prefix)
    for name in DESTINATION_LISTS:
        entries = [*result.get(name, []), *own.get(name, [])]
        if entries:
            result[name] = entries
    if eventbridge:
        result[EVENTBRIDGE] = {}
    return result


def removed(config: Config, prefix: str, turned_eventbridge_on: bool) -> Config:
    """``config`` without this stack's entries; EventBridge delivery off only if this stack
    turned it on."""
    result = without_own(config, prefix)
    if turned_eventbridge_on:
        result.pop(EVENTBRIDGE, None)
    return result


def physical_id(bucket: str, prefix: str, turned_on: bool) -> str:
    return f"{bucket}/{prefix}{TURNED_ON if turned_on else ''}"


# --- The shell: S3 and CloudFormation ----------------------------------------------------------


def _read(s3: Any, bucket: str, owner: str | None) -> Config:
    extra = {"ExpectedBucketOwner": owner} if owner else {}
    response = s3.get_bucket_notification_configuration(Bucket=bucket, **extra)
    return {k: v for k, v in response.items() if k in (*DESTINATION_LISTS, EVENTBRIDGE)}


def _write(s3: Any, bucket: str, owner: str | None, config: Config) -> None:
    extra = {"ExpectedBucketOwner": owner} if owner else {}
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=config, **extra
    )


def apply(event: dict[str, Any], s3: Any) -> str:
    """Do what the CloudFormation request asks; return the physical resource id."""
    props = event["ResourceProperties"]
    bucket, prefix = props["BucketName"], props["IdPrefix"]
    owner = props.get("ExpectedBucketOwner") or None
    eventbridge = str(props.get("EventBridge", "false")).lower() == "true"
    own: Config = {name: props[name] for name in DESTINATION_LISTS if props.get(name)}
    request = event["RequestType"]
    old_id = str(event.get("PhysicalResourceId", ""))
    if request == "Delete":
        if not old_id.startswith(f"{bucket}/"):
            return old_id  # a create that failed before it wrote anything
        current = _read(s3, bucket, owner)
        _write(s3, bucket, owner, removed(current, prefix, old_id.endswith(TURNED_ON)))
        return old_id
    current = _read(s3, bucket, owner)
    if request == "Update" and old_id.startswith(f"{bucket}/{prefix}"):
        turned_on = old_id.endswith(TURNED_ON) and eventbridge
    else:  # Create, or an update onto another bucket (CloudFormation then deletes the old id)
        turned_on = eventbridge and EVENTBRIDGE not in current
    _write(s3, bucket, owner, merged(current, prefix, own, eventbridge))
    return physical_id(bucket, prefix, turned_on)


def _respond(event: dict[str, Any], status: str, physical: str, reason: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": physical,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's pre-signed one
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def handler(event: dict[str, Any], context: object) -> None:
    """CloudFormation's entry point: never leaves the stack waiting for an answer."""
    physical = str(event.get("PhysicalResourceId") or event["LogicalResourceId"])
    try:
        physical = apply(event, boto3.client("s3"))
    except Exception as error:  # every failure must reach CloudFormation
        LOG.exception("bucket notifications: %s failed", event.get("RequestType"))
        _respond(event, "FAILED", physical, f"{type(error).__name__}: {error}")
        return
    _respond(event, "SUCCESS", physical, "")
