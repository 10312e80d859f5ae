"""Run the function on this machine: ``make run`` (see the README's quick start).

By default it starts an embedded S3 (moto's ``ThreadedMotoServer`` on loopback, fake credentials,
no AWS account, no Docker), uploads the objects that ``events/put.json`` names from
``events/objects/``, invokes ``handler.app.lambda_handler`` with that event, and prints the result
object and the handler's summary.

Point it elsewhere with flags (``make run ARGS="..."``):

    --event FILE          another event file from events/ (its objects are seeded the same way)
    --file PATH --key K   upload your own file as key K and invoke with an event made for it
    --bucket NAME         the bucket (default: the event's, or market-totals-demo)
    --real-s3             use the S3 your AWS environment names (profile, region, credentials,
                          AWS_ENDPOINT_URL_S3) instead of the embedded one; the bucket must exist
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import boto3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
OBJECTS = EVENTS / "objects"
DEFAULT_BUCKET = "market-totals-demo"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass
class LocalContext:
    """The few attributes of Lambda's context object that Powertools' Logger reads."""

    function_name: str = "market-totals-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:market-totals-local"
    aws_request_id: str = "local-invoke"


def put_event(
    bucket: str,
    key: str,
    *,
    etag: str,
    size: int,
    sequencer: str | None,
    version_id: str | None = None,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An S3 notification in the shape S3 (and ``sam local generate-event s3 put``) sends."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": event_name,
                "userIdentity": {"principalId": "LOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "local",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def event_keys(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(bucket, decoded key)`` of every object an event names, whatever its shape."""
    from handler.sources import object_events  # noqa: PLC0415 - src/ is on the path by then

    for item in object_events(event):
        yield item.bucket, item.key


def seed_event_objects(client: S3Client, event: dict[str, Any]) -> list[tuple[str, str]]:
    """Create the buckets an event names and upload, from ``events/objects/``, each object of
    it that has a file there. Returns what was uploaded."""
    seeded = []
    for bucket, key in event_keys(event):
        ensure_bucket(client, bucket)
        path = OBJECTS / key
        if path.is_file():
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            seeded.append((bucket, key))
    return seeded


def ensure_bucket(client: S3Client, bucket: str) -> None:
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)


@contextlib.contextmanager
def embedded_s3() -> Iterator[str]:
    """A moto S3 server on a free loopback port, with the environment pointed at it."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - a dev dependency

    # werkzeug logs every request of the server; the handler's own logs are what matter here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # A server in this process shares moto's backends with any earlier one (and with mock_aws):
    # start from an empty S3 so that a previous run's results are not mistaken for this one's.
    reset_moto(endpoint)
    saved = {name: os.environ.get(name) for name in [*FAKE_AWS_ENV, "AWS_ENDPOINT_URL_S3"]}
    os.environ.update(FAKE_AWS_ENV, AWS_ENDPOINT_URL_S3=endpoint)
    try:
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_moto(endpoint)
        server.stop()


def reset_moto(endpoint: str) -> None:
    """Empty the moto server at ``endpoint`` (its backends are shared by the whole process)."""
    # The endpoint is the loopback server started above: no user-supplied URL reaches urlopen.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, invoke, and collect the handler's summary and the result objects it wrote."""
    from handler.app import lambda_handler  # noqa: PLC0415 - after the environment is set

    client: S3Client = boto3.client("s3")
    if args.file:
        bucket = args.bucket or DEFAULT_BUCKET
        ensure_bucket(client, bucket)
        put = client.put_object(Bucket=bucket, Key=args.key, Body=Path(args.file).read_bytes())
        event = put_event(
            bucket,
            args.key,
            etag=put["ETag"].strip('"'),
            size=Path(args.file).stat().st_size,
            version_id=put.get("VersionId"),
            # A sequencer that grows with time, so each run counts as a later event.
            sequencer=f"{time.time_ns():020X}",
        )
    else:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
        if args.bucket:
            for record in event.get("Records") or []:
                record["s3"]["bucket"]["name"] = args.bucket  # S3 notifications only
        seed_event_objects(client, event)
    summary = lambda_handler(event, LocalContext())
    return {"summary": summary, "results": written_results(client, event)}


def written_results(client: S3Client, event: dict[str, Any]) -> dict[str, str]:
    """The result objects for the inputs an event names, as stored (a JSON round trip through
    float would change the exact total), whatever the event's shape."""
    from handler.results import result_key  # noqa: PLC0415 - src/ is on the path by then
    from handler.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    results = {}
    for bucket, key in event_keys(event):
        if not key.endswith(settings.input_suffix):
            continue
        out_bucket = settings.result_bucket or bucket
        out_key = result_key(key, settings.result_name)
        try:
            body = client.get_object(Bucket=out_bucket, Key=out_key)["Body"].read()
        except client.exceptions.NoSuchKey:
            continue
        results[f"s3://{out_bucket}/{out_key}"] = body.decode()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event", default=str(EVENTS / "put.json"))
    parser.add_argument("--file", help="a market_infos.json of your own to upload")
    parser.add_argument("--key", default="my_market/market_infos.json")
    parser.add_argument("--bucket")
    parser.add_argument("--real-s3", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if not args.real_s3:
            endpoint = stack.enter_context(embedded_s3())
            print(f"embedded S3 (moto) at {endpoint}", file=sys.stderr)
        outcome = run(args)
    for location, document in outcome["results"].items():
        print(f"result object {location}:")
        print(document)
    print("handler summary:")
    print(json.dumps(outcome["summary"], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
