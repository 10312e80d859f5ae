"""Run the function on this machine, playing S3's part: ``make run`` (README, "Quick start").

By default it starts an embedded S3 (moto's ``ThreadedMotoServer`` on loopback, fake credentials,
no AWS account, no Docker), uploads every object the event names, rewrites the event with what S3
would have sent for those uploads (ETag, size, version id, a fresh sequencer), invokes
``handler.app.lambda_handler`` with it, and prints the result objects. With ``--delete`` it then
deletes each input key and invokes with the deletion event S3 would send.

stdout carries the result objects only, one JSON document per line, exactly as stored (so
``make run | jq .total`` works); logs, the handler's answer and explanations go to stderr. Every
error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
OBJECTS = EVENTS / "objects"
DEFAULT_EVENT = EVENTS / "put.json"
DEFAULT_BUCKET = "market-totals-demo"
DEFAULT_KEY = "my_market/market_infos.json"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class UsageError(Exception):
    """Something the user can fix, said in one line."""


@dataclass
class LocalContext:
    """The few attributes of Lambda's context object that Powertools' Logger reads, and the
    remaining time the handler bounds its work by: Lambda's longest timeout (15 minutes), and
    never less, so a local run takes every record."""

    function_name: str = "market-totals-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:market-totals-local"
    aws_request_id: str = "local-invoke"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass(frozen=True)
class Upload:
    """What S3 said about a PUT: what its event would carry."""

    etag: str
    size: int
    version_id: str | None
    sequencer: str


def new_sequencer() -> str:
    """A sequencer that grows with time, as S3's do for one key: each run counts as later."""
    return f"{time.time_ns():020X}"


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
    return _notification(bucket, event_name, obj, sequencer=sequencer, version_id=version_id)


def delete_event(
    bucket: str,
    key: str,
    *,
    sequencer: str | None,
    version_id: str | None = None,
    delete_marker: bool = False,
    lifecycle: bool = False,
) -> dict[str, Any]:
    """The S3 notification of a deletion, in the shape S3's user guide documents: no ETag and no
    size; ``versionId`` names the version deleted, or the delete marker made
    (``DeleteMarkerCreated``); ``lifecycle`` for an expiry (``LifecycleExpiration:*``)."""
    prefix = "LifecycleExpiration" if lifecycle else "ObjectRemoved"
    name = f"{prefix}:{'DeleteMarkerCreated' if delete_marker else 'Delete'}"
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/")}
    return _notification(bucket, name, obj, sequencer=sequencer, version_id=version_id)


def _notification(
    bucket: str,
    event_name: str,
    obj: dict[str, Any],
    *,
    sequencer: str | None,
    version_id: str | None,
) -> dict[str, Any]:
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


def delete_and_tell(
    client: S3Client,
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    sequencer: str | None = None,
) -> dict[str, Any]:
    """Delete ``key`` (only ``version_id`` where given) and return the notification S3 sends for
    that deletion: ``DeleteMarkerCreated`` where a versioned bucket made a delete marker. The
    sequencer is a fresh one unless given."""
    if version_id is None:
        answer = client.delete_object(Bucket=bucket, Key=key)
    else:
        answer = client.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    return delete_event(
        bucket,
        key,
        sequencer=sequencer or new_sequencer(),
        version_id=answer.get("VersionId") or version_id,
        delete_marker=bool(answer.get("DeleteMarker")) and version_id is None,
    )


def event_keys(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(bucket, decoded key)`` of every object an event names, whatever its shape."""
    from handler.events import object_events  # noqa: PLC0415 - src/ is on the path by then

    for item in object_events(event):
        yield item.bucket, item.key


def seed_event_objects(client: S3Client, event: dict[str, Any]) -> list[tuple[str, str]]:
    """Create the buckets an event names and upload, from ``events/objects/``, each object of
    it that has a file there. Returns what was uploaded. (The sample events' ETags and sizes are
    those files'; ``play_s3`` also rewrites the event.)"""
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


# --- Playing S3's part ------------------------------------------------------------------------


def play_s3(
    client: S3Client, event: dict[str, Any], *, create_buckets: bool
) -> tuple[dict[str, Any], list[str]]:
    """Upload every object ``event`` names (its content from ``events/objects/<key>``) and
    return the event S3 would have sent for those uploads, with notes for stderr.

    Deletion events upload nothing. A named input with no file raises ``UsageError``.
    """
    from handler.events import object_events  # noqa: PLC0415 - src/ is on the path by then
    from handler.rules.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    uploads: dict[tuple[str, str], Upload] = {}
    notes = []
    for item in object_events(event):
        if create_buckets:
            ensure_bucket(client, item.bucket)
        # The function skips other keys and other events without reading: nothing to upload.
        if not (item.created and settings.is_input(item.key)) or (item.bucket, item.key) in uploads:
            continue
        path = OBJECTS / item.key
        if not path.is_file():
            raise UsageError(
                f"the event names s3://{item.bucket}/{item.key}, but {path.relative_to(ROOT)} "
                "does not exist: put the object's content there, or use --file and --key"
            )
        uploads[item.bucket, item.key] = upload(
            client, item.bucket, item.key, path.read_bytes(), create_bucket=create_buckets
        )
        notes.append(f"uploaded {path.relative_to(ROOT)} as s3://{item.bucket}/{item.key}")
    return rewrite_event(event, uploads), notes


def upload(client: S3Client, bucket: str, key: str, body: bytes, *, create_bucket: bool) -> Upload:
    """PUT ``body`` and return what the event of that upload carries."""
    if create_bucket:
        ensure_bucket(client, bucket)
    else:
        require_bucket(client, bucket)
    put = client.put_object(Bucket=bucket, Key=key, Body=body)
    return Upload(put["ETag"].strip('"'), len(body), put.get("VersionId"), new_sequencer())


def require_bucket(client: S3Client, bucket: str) -> None:
    """``--real-s3`` never creates buckets: say so if the one named is not there."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise UsageError(f"bucket {bucket!r} does not exist (--real-s3 creates none)") from None
        raise


def rewrite_event(event: dict[str, Any], uploads: dict[tuple[str, str], Upload]) -> dict[str, Any]:
    """``event`` with each uploaded object's fields replaced by the upload's, in the field names
    of the event's shape (SQS bodies and SNS envelopes included)."""
    from handler.events import Shape, shape_of  # noqa: PLC0415 - src/ is on the path by then

    event = copy.deepcopy(event)
    shape = shape_of(event)
    if shape is Shape.S3:
        for record in event["Records"]:
            _rewrite_notification_record(record, uploads)
    elif shape is Shape.EVENTBRIDGE:
        _rewrite_eventbridge(event, uploads)
    elif shape is Shape.SQS:
        for record in event["Records"]:
            record["body"] = _rewrite_body(record["body"], uploads)
            # SQS's own checksum of the body is an MD5; nothing here relies on it for safety.
            record["md5OfBody"] = hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324
    # Batch Operations tasks name no ETag or sequencer; nothing to rewrite.
    return event


def _rewrite_body(body: str, uploads: dict[tuple[str, str], Upload]) -> str:
    document = json.loads(body)
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        document["Message"] = _rewrite_body(document["Message"], uploads)
        return json.dumps(document, ensure_ascii=False)
    if "Records" in document or "detail" in document:
        return json.dumps(rewrite_event(document, uploads), ensure_ascii=False)
    return body  # an s3:TestEvent


def _rewrite_notification_record(
    record: dict[str, Any], uploads: dict[tuple[str, str], Upload]
) -> None:
    from handler.events import from_s3_record  # noqa: PLC0415 - src/ is on the path by then

    item = from_s3_record(record)
    done = uploads.get((item.bucket, item.key))
    if done is None:
        return
    obj = record["s3"]["object"]
    obj.update(eTag=done.etag, size=done.size, sequencer=done.sequencer)
    if done.version_id is not None:
        obj["versionId"] = done.version_id
    else:
        obj.pop("versionId", None)


def _rewrite_eventbridge(event: dict[str, Any], uploads: dict[tuple[str, str], Upload]) -> None:
    from handler.events import from_eventbridge  # noqa: PLC0415 - src/ is on the path by then

    item = from_eventbridge(event)
    done = uploads.get((item.bucket, item.key))
    if done is None:
        return
    obj = event["detail"]["object"]
    # EventBridge writes the sequencer in lowercase.
    obj.update(etag=done.etag, size=done.size, sequencer=done.sequencer.lower())
    if done.version_id is not None:
        obj["version-id"] = done.version_id
    else:
        obj.pop("version-id", None)


# --- The embedded S3 --------------------------------------------------------------------------


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


# --- The command ------------------------------------------------------------------------------


def load_event(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read the event {path}: {error.strerror}") from None
    try:
        event = json.loads(text)
    except ValueError as error:
        raise UsageError(f"the event {path} is not JSON ({error})") from None
    if not isinstance(event, dict):
        raise UsageError(f"the event {path} is JSON but not an object")
    if "products" in event:  # a market document, the input itself, given where an event goes
        raise UsageError(f"{path} is a market document, not an event: upload it with --file {path}")
    return event


def build_event(args: argparse.Namespace, client: S3Client) -> tuple[dict[str, Any], list[str]]:
    """The event to invoke with, after the uploads it describes."""
    create = not args.real_s3
    if args.file is not None:
        try:
            body = Path(args.file).read_bytes()
        except OSError as error:
            raise UsageError(f"cannot read --file {args.file}: {error.strerror}") from None
        bucket = args.bucket or DEFAULT_BUCKET
        key = args.key or DEFAULT_KEY
        done = upload(client, bucket, key, body, create_bucket=create)
        event = put_event(
            bucket,
            key,
            etag=done.etag,
            size=done.size,
            sequencer=done.sequencer,
            version_id=done.version_id,
        )
        return event, [f"uploaded {args.file} as s3://{bucket}/{key}"]
    event = load_event(Path(args.event or DEFAULT_EVENT))
    if args.bucket:
        event = with_bucket(event, args.bucket)
    return play_s3(client, event, create_buckets=create)


def with_bucket(event: dict[str, Any], bucket: str) -> dict[str, Any]:
    """``event`` with every bucket it names replaced by ``bucket`` (S3 notifications and
    EventBridge events; other shapes are refused, where it would be a guess)."""
    from handler.events import Shape, shape_of  # noqa: PLC0415 - src/ is on the path by then

    event = copy.deepcopy(event)
    shape = shape_of(event)
    if shape is Shape.S3:
        for record in event["Records"]:
            record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    elif shape is Shape.EVENTBRIDGE:
        event["detail"]["bucket"]["name"] = bucket
        event["resources"] = [f"arn:aws:s3:::{bucket}"]
    else:
        raise UsageError(
            f"--bucket works with S3 notifications and EventBridge events, not {shape.value}"
        )
    return event


def invoke(event: dict[str, Any], *, verbose: bool = False) -> dict[str, Any]:
    """Invoke the handler with its logs (and, ``verbose``, its metrics) on stderr: stdout is for
    results only. Without ``verbose`` only warnings and errors are logged."""
    from handler.app import lambda_handler  # noqa: PLC0415 - after the environment is set
    from handler.observability import logger  # noqa: PLC0415

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(_Stderr())
    logger.setLevel("INFO" if verbose else "WARNING")
    saved = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false" if verbose else "true"
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Metrics prints its EMF line
            answer: dict[str, Any] = lambda_handler(event, LocalContext())
    finally:
        if saved is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved
    return answer


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (a test's capture, a redirect), not the
    stream it was when the handler was set."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def written_results(client: S3Client, event: dict[str, Any]) -> dict[str, str]:
    """The result objects for the inputs an event names, as stored (a JSON round trip through
    float would change the exact total), whatever the event's shape."""
    from handler.rules.settings import Settings  # noqa: PLC0415 - src/ is on the path by then

    settings = Settings.from_env()
    results = {}
    for bucket, key in event_keys(event):
        if not settings.is_input(key):
            continue
        out_bucket, out_key = settings.result_target(bucket, key)
        try:
            body = client.get_object(Bucket=out_bucket, Key=out_key)["Body"].read()
        except client.exceptions.NoSuchKey:
            continue
        results[f"s3://{out_bucket}/{out_key}"] = body.decode()
    return results


def explain(answer: dict[str, Any]) -> list[str]:
    """One line per skipped record, saying what its reason means."""
    from handler.outcomes import Reason  # noqa: PLC0415 - src/ is on the path by then
    from handler.rules.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    lines = []
    for record in answer.get("records", []):
        if record.get("status") == "withdrawn":
            lines.append(f"withdrawn {record['result_key']}: its input {record['key']} is gone")
        if record.get("status") == "skipped":
            reason = Reason.of(record["reason"])
            meaning = reason.meaning if reason else ""
            meaning = meaning.replace("INPUT_SUFFIX", repr(settings.input_suffix))
            lines.append(f"skipped {record['key']}: {record['reason']}: {meaning}")
    return lines


def run(args: argparse.Namespace) -> None:
    """Upload, invoke, and print the result objects written, each step told on stderr as it
    happens. With ``--delete``, then delete each input, invoke with S3's deletion event, and
    print on stdout one JSON line per deletion: the handler's record of it, with ``deleted``
    naming the input deleted."""
    client: S3Client = boto3.client("s3")
    event, notes = build_event(args, client)
    for note in notes:
        print(note, file=sys.stderr)
    with source_buckets({bucket for bucket, _ in event_keys(event)}):
        tell(invoke(event, verbose=args.verbose))
        results = written_results(client, event)
        if not results:
            print("no result object was written", file=sys.stderr)
        for location, document in results.items():
            print(f"result object {location}", file=sys.stderr)
            print(document, flush=True)
        if not args.delete:
            return
        for deletion in delete_inputs(client, event):
            for bucket, key in event_keys(deletion):
                print(f"deleted s3://{bucket}/{key}", file=sys.stderr)
            answer = invoke(deletion, verbose=args.verbose)
            tell(answer)
            for record in answer.get("records", []):
                deleted = f"s3://{record['bucket']}/{record['key']}"
                print(json.dumps({"deleted": deleted, **record}, ensure_ascii=False), flush=True)
        if not written_results(client, event):
            print("no result object is left", file=sys.stderr)


def tell(answer: dict[str, Any]) -> None:
    """The handler's answer on stderr, with what each skip reason means."""
    print("handler answer: " + json.dumps(answer, ensure_ascii=False), file=sys.stderr)
    for line in explain(answer):
        print(line, file=sys.stderr)


@contextlib.contextmanager
def source_buckets(buckets: set[str]) -> Iterator[None]:
    """``SOURCE_BUCKETS`` set to the buckets this run works on (unless the shell sets it), as
    the template sets it to its bucket: the function's rule "only its own buckets" applies to a
    local run too."""
    from handler.rules.scope import bucket_name_problem  # noqa: PLC0415 - src/ is on the path by then

    saved = os.environ.get("SOURCE_BUCKETS")
    names = sorted(bucket for bucket in buckets if not bucket_name_problem(bucket))
    if not saved and names:  # a name that is no bucket name is refused by the function anyway
        os.environ["SOURCE_BUCKETS"] = ",".join(names)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SOURCE_BUCKETS", None)
        else:
            os.environ["SOURCE_BUCKETS"] = saved


def delete_inputs(client: S3Client, event: dict[str, Any]) -> list[dict[str, Any]]:
    """``--delete``: delete each input key ``event`` names (a delete marker in a versioned
    bucket) and return the notification S3 sends for each deletion."""
    from handler.rules.settings import Settings  # noqa: PLC0415 - src/ is on the path by then

    settings = Settings.from_env()
    keys = dict.fromkeys(item for item in event_keys(event) if settings.is_input(item[1]))
    return [delete_and_tell(client, bucket, key) for bucket, key in keys]


class _OneLineParser(argparse.ArgumentParser):
    """argparse's errors as every other error here: one line, no usage block above it."""

    def error(self, message: str) -> NoReturn:
        print(f"make run: error: {message} (ARGS=--help lists the flags)", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    command = _OneLineParser(
        prog="make run ARGS=...",
        description="Total a market on an embedded S3 (moto) or your own, playing S3's part: "
        "upload the objects the event names, send the event S3 would have sent, print the "
        "result objects on stdout (one JSON document per line, as stored).",
    )
    source = command.add_mutually_exclusive_group()
    source.add_argument(
        "--event",
        metavar="FILE",
        help="an event of any shape the function takes (events/*.json, or `sam local "
        "generate-event s3 put ...`); the objects it names are uploaded from events/objects/ "
        f"(default: {DEFAULT_EVENT.relative_to(ROOT)})",
    )
    source.add_argument(
        "--file",
        metavar="PATH",
        help="upload this file of your own as --key and invoke with the event of that upload",
    )
    command.add_argument(
        "--key", help=f"with --file: the key it is uploaded as (default: {DEFAULT_KEY})"
    )
    command.add_argument(
        "--bucket",
        metavar="NAME",
        help=f"the bucket (S3 notification and EventBridge events: replaces the event's) "
        f"(default: the event's; {DEFAULT_BUCKET} with --file)",
    )
    command.add_argument(
        "--real-s3",
        action="store_true",
        help="use the S3 your AWS environment names (profile, region, credentials, "
        "AWS_ENDPOINT_URL_S3) instead of the embedded one; the bucket must exist",
    )
    command.add_argument(
        "--delete",
        action="store_true",
        help="then delete each input key (a delete marker in a versioned bucket) and invoke "
        "with S3's deletion event: the result is withdrawn",
    )
    command.add_argument(
        "--verbose",
        action="store_true",
        help="also print the function's INFO logs and its CloudWatch metrics (stderr)",
    )
    return command


def check_flags(args: argparse.Namespace) -> None:
    """What argparse cannot say: an event names its own keys, so a --key without --file would be
    silently ignored."""
    if args.key is not None and args.file is None:
        raise UsageError("--key names the key --file is uploaded as: give --file too")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check_flags(args)
        with contextlib.ExitStack() as stack:
            if not args.real_s3:
                endpoint = stack.enter_context(embedded_s3())
                print(f"embedded S3 (moto) at {endpoint}", file=sys.stderr)
            run(args)
    except UsageError as error:
        return fail(str(error))
    except NoCredentialsError:
        return fail("no AWS credentials: set a profile or keys for --real-s3")
    except ClientError as error:
        info = error.response.get("Error", {})
        return fail(f"S3 said {info.get('Code', '?')}: {info.get('Message', error)}")
    except BotoCoreError as error:  # a bucket name S3 refuses, an endpoint that is not there
        return fail(str(error))
    except ValueError as error:  # an event the function does not take (UnknownEvent, ...)
        return fail(str(error))
    return 0


def fail(message: str) -> int:
    one_line = " ".join(message.split())  # botocore's validation errors span lines
    print(f"make run: error: {one_line}", file=sys.stderr)
    return 2
