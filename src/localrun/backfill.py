"""Total the inputs that were already in a bucket before its trigger existed (docs/backfill.md).

S3 sends events only for new uploads, so objects uploaded before the function was deployed (or
while a trigger was off) never get a result. Two ways to catch up, both through the same
processing path as live events, so that a backfill can never roll back a result a live event
wrote:

    backfill.py --bucket B [--prefix P] [--workers N] [--dry-run]
        Walk the bucket on this machine: list it, and process each input in a thread pool.
        Resumable: a rerun costs one HEAD per input whose result is already current. Also
        removes orphan results (whose input no longer exists), conditionally.
    backfill.py --embedded-demo
        The same against an embedded S3 (moto) seeded with demo objects: no AWS account needed.
    backfill.py batch-job (--stack NAME | --bucket B --function-arn ARN --role-arn ARN) [...]
        For buckets one machine should not walk: an S3 Batch Operations job that invokes the
        deployed function over a manifest (one written from a listing, or an S3 Inventory
        report).

Exit status: 0 when every input was processed (or the job was created, or completed without a
failed task), 1 when some failed, 2 when the run could not start (credentials, bucket, access,
settings, flags), 130 when interrupted. Errors are one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

# tqdm ships no type information (typeshed's types-tqdm is not a dev dependency): it is Any here.
from tqdm import tqdm  # type: ignore[import-untyped]

from handler import storage
from handler.events import ObjectEvent
from handler.flows import created, deleted
from handler.outcomes import Outcome
from handler.rules.ordering import Version
from handler.rules.settings import ConfigurationError, Settings
from localrun.invoke import OBJECTS, embedded_s3, ensure_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROG: Final = "backfill.py"
DEFAULT_WORKERS: Final = 8
MAX_WORKERS: Final = 128
#: Futures kept in flight per worker: enough to keep every worker busy while the listing pages
#: in, few enough that a bucket of millions of keys is never held in memory.
IN_FLIGHT_PER_WORKER: Final = 4
DEMO_BUCKET: Final = "market-totals-demo"

# The fixed prefixes BatchOperationsRole may read and write (template.yaml).
MANIFEST_PREFIX: Final = "batch-manifests"
REPORT_PREFIX: Final = "batch-reports"
CSV_MANIFEST_FORMAT: Final = "S3BatchOperations_CSV_20180820"
INVENTORY_MANIFEST_FORMAT: Final = "S3InventoryReport_CSV_20161130"
DEFAULT_PRIORITY: Final = 10
DEFAULT_POLL_INTERVAL: Final = 15.0
DEFAULT_WAIT_TIMEOUT: Final = 3600.0
#: describe_job statuses after which nothing changes any more.
TERMINAL_STATUSES: Final = frozenset({"Complete", "Failed", "Cancelled"})
#: CreateJob's limit on Description.
MAX_DESCRIPTION: Final = 256

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_ERROR: Final = 2
EXIT_INTERRUPTED: Final = 130


class CliError(Exception):
    """A run that cannot go on: reported as one line on stderr, exit status 2."""


# --- errors: one line each ------------------------------------------------------------------


def describe_aws_error(error: Exception, doing: str) -> str:
    """One line for an AWS error, saying what was being done and what to check: a traceback
    tells a user of this script nothing they can act on."""
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE (after `aws sso login` or `aws configure`) "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = one_line(str(details.get("Message", "") or error))
        if code == "NoSuchBucket":
            return f"{doing}: the bucket does not exist ({code}: {message})"
        if code in ("AccessDenied", "403", "AllAccessDisabled", "AccessDeniedException"):
            return f"{doing}: access denied ({code}: {message})"
        return f"{doing}: {code or 'error'}: {message}"
    return f"{doing}: {one_line(str(error))}"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the brief usage would be a second)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see --help)\n")


# --- the local backfill ---------------------------------------------------------------------


def list_objects(client: S3Client, bucket: str, prefix: str) -> Iterator[tuple[str, str]]:
    """``(key, ETag without quotes)`` of every object under ``prefix``, a page at a time, so
    that a bucket of any size streams through in bounded memory."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"], obj["ETag"].strip('"')


@dataclass
class Folder:
    """What the listing showed of one folder so far: an input, and the result's key."""

    has_input: bool = False
    result: str | None = None


class OrphanFinder:
    """Results whose folder lists no input: candidates for removal, found in one pass over a
    sorted listing in bounded memory.

    Every input whose result is ``F + RESULT_NAME`` starts with ``F``, and S3 lists keys in
    lexicographic order, so all keys starting with ``F`` come in one block: once a key that
    does not start with ``F`` is listed, folder ``F`` is complete. Only the folders on the path
    to the current key are open at any time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open: dict[str, Folder] = {}

    def see(self, key: str) -> list[str]:
        """Note ``key``; return the candidate results of the folders it closes."""
        closed = [folder for folder in self._open if not key.startswith(folder)]
        found = self._close(closed)
        folder = key[: key.rfind("/") + 1]
        state = self._open.setdefault(folder, Folder())
        if self.settings.is_input(key):
            state.has_input = True
        elif self.settings.is_result(key):
            state.result = key
        return found

    def finish(self) -> list[str]:
        """The candidates of the folders still open when the listing ends."""
        return self._close(list(self._open))

    def _close(self, folders: list[str]) -> list[str]:
        found = []
        for folder in folders:
            state = self._open.pop(folder)
            if state.result is not None and not state.has_input:
                found.append(state.result)
        return found


@dataclass
class Tally:
    """What a local run did: the summary line, built as outcomes arrive."""

    listed: int = 0
    ignored: int = 0
    failed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def count(self, outcome: Outcome) -> None:
        self.statuses[outcome.status] += 1
        if outcome.status == "skipped":
            self.reasons[outcome.reason or "unknown"] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "ok": self.statuses["ok"],
            "invalid": self.statuses["invalid"],
            "skipped": self.statuses["skipped"],
            "failed": self.failed,
            "skipped_reasons": dict(sorted(self.reasons.items())),
            "ignored": self.ignored,
            "withdrawn": self.statuses["withdrawn"],
        }


class LocalBackfill:
    """Process every input under a prefix, as the function would for a live event of each.

    Each input becomes ``ObjectEvent(bucket, key, Version(None, <listing ETag>, None))``: no
    version id, no sequencer, so ``ordering`` decides by the key's current object (a result
    already made from these bytes is a duplicate after one HEAD; a live result from other bytes
    is replaced only if the listed object is still current, which the read checks with
    If-Match). That is what makes a rerun cheap and a backfill unable to roll anything back.
    """

    def __init__(self, settings: Settings, *, workers: int, progress: bool) -> None:
        self.settings = settings
        self.workers = workers
        self.progress = progress
        self.tally = Tally()
        self.orphans = 0  # candidates a dry run named
        self._local = threading.local()
        self._client_lock = threading.Lock()

    def client(self) -> S3Client:
        """This thread's S3 client. One per worker rather than one shared: a client's connection
        pool holds 10 connections, so more workers than that would share too few."""
        client: S3Client | None = getattr(self._local, "client", None)
        if client is None:
            # boto3's default session is not thread-safe while it makes a client.
            with self._client_lock:
                client = storage.client_for(self.settings.expected_bucket_owner)
            self._local.client = client
        return client

    def process(self, bucket: str, key: str, etag: str) -> Outcome:
        event = ObjectEvent(bucket, key, Version(version_id=None, etag=etag, sequencer=None))
        return created.process(self.client(), event, self.settings)

    def withdraw_orphan(self, bucket: str, out_key: str) -> Outcome:
        return deleted.withdraw_orphan(self.client(), bucket, out_key, self.settings)

    def inputs(self, bucket: str, prefix: str) -> Iterator[tuple[str, str | None]]:
        """The inputs the listing names, as ``(key, ETag)``, and the orphan candidates, as
        ``(result key, None)``: results whose folder lists no input. Other keys (results,
        anything else) are counted as ignored, as the trigger's suffix filter would never send
        them. Orphans are looked for only where results sit beside their inputs (RESULT_BUCKET
        unset, or this bucket)."""
        finder = OrphanFinder(self.settings)
        reconcile = self.settings.result_bucket in (None, "", bucket)
        for key, etag in list_objects(self.client(), bucket, prefix):
            if reconcile:
                yield from ((orphan, None) for orphan in finder.see(key))
            if self.settings.is_input(key):
                self.tally.listed += 1
                yield key, etag
            else:
                self.tally.ignored += 1
        if reconcile:
            yield from ((orphan, None) for orphan in finder.finish())

    def work(self, bucket: str, key: str, etag: str | None) -> Outcome:
        """An input's processing, or an orphan candidate's reconciliation."""
        if etag is None:
            return self.withdraw_orphan(bucket, key)
        return self.process(bucket, key, etag)

    def dry_run(self, bucket: str, prefix: str) -> Tally:
        """Name each input that a run would process, and each result it would check for an
        orphan (its folder lists no input), reading and writing nothing."""
        try:
            for key, etag in self.inputs(bucket, prefix):
                print(f"s3://{bucket}/{key}" + (" (orphan?)" if etag is None else ""))
                self.orphans += etag is None
        except (ClientError, BotoCoreError) as error:
            raise CliError(describe_aws_error(error, f"listing s3://{bucket}/{prefix}")) from None
        return self.tally

    def run(self, bucket: str, prefix: str) -> Tally:
        """List and process concurrently, with at most ``workers * IN_FLIGHT_PER_WORKER``
        objects between the two. A failure of one object is counted and reported, and the run
        goes on; a failure of the listing ends it after the work in flight is done."""
        bar = tqdm(
            desc="backfill",
            unit=" objects",
            file=sys.stderr,
            disable=not self.progress,
        )
        in_flight: dict[Future[Outcome], str] = {}
        limit = self.workers * IN_FLIGHT_PER_WORKER
        listing_error: str | None = None
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="backfill")
        try:
            try:
                for key, etag in self.inputs(bucket, prefix):
                    if len(in_flight) >= limit:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        self._collect(bucket, done, in_flight, bar)
                    in_flight[pool.submit(self.work, bucket, key, etag)] = key
            except (ClientError, BotoCoreError) as error:
                listing_error = describe_aws_error(error, f"listing s3://{bucket}/{prefix}")
            self._collect(bucket, list(in_flight), in_flight, bar)
        finally:
            # All is collected by now, unless interrupted: then drop what has not started.
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        if listing_error is not None:
            raise CliError(listing_error)
        return self.tally

    def _collect(
        self,
        bucket: str,
        done: Sequence[Future[Outcome]] | set[Future[Outcome]],
        in_flight: dict[Future[Outcome], str],
        bar: Any,
    ) -> None:
        """Count finished futures in the main thread (no locks needed on the tally)."""
        for future in done:
            key = in_flight.pop(future)
            try:
                self.tally.count(future.result())
            except Exception as error:  # noqa: BLE001 - one object's failure never stops the run
                self.tally.failed += 1
                line = one_line(f"{bucket}/{key}: {type(error).__name__}: {error}")
                tqdm.write(f"failed: {line}", file=sys.stderr)
            bar.update(1)
            counts = {"listed": self.tally.listed, "failed": self.tally.failed}
            bar.set_postfix(ordered_dict=counts, refresh=False)


def seed_demo(client: S3Client, bucket: str, suffix: str) -> list[str]:
    """Upload the sample objects of ``events/objects/`` and a few generated ones (one invalid,
    one that is not an input), so that ``--embedded-demo`` has a bit of everything."""
    ensure_bucket(client, bucket)
    objects: dict[str, bytes] = {
        path.relative_to(OBJECTS).as_posix(): path.read_bytes()
        for path in sorted(OBJECTS.rglob("*"))
        if path.is_file()
    }
    for number in range(1, 6):
        # Written as text: prices with two decimals, exactly as a market would send them.
        products = ", ".join(
            f'{{"name": "item {n}", "price": {number}.{n:02d}}}' for n in range(1, 4)
        )
        document = f'{{"market": "generated {number}", "products": [{products}]}}'
        objects[f"generated/market_{number:02d}/{suffix}"] = document.encode()
    objects[f"generated/broken/{suffix}"] = b'{"market": "broken", "products": [{"price": '
    objects["generated/README.txt"] = b"not an input: the backfill ignores it\n"
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return list(objects)


def show_demo_results(client: S3Client, bucket: str, keys: list[str], settings: Settings) -> None:
    """Print the results the demo wrote, so that a first try shows what a backfill produces."""
    for key in keys:
        if not settings.is_input(key):
            continue
        _, out_key = settings.result_target(bucket, key)
        with contextlib.suppress(client.exceptions.NoSuchKey):
            body = client.get_object(Bucket=bucket, Key=out_key)["Body"].read()
            document = json.loads(body, parse_float=Decimal)  # the total exactly as stored
            error = document.get("error") or {}
            shown = document.get("total", f"{error.get('code')}: {error.get('message')}")
            print(f"  s3://{bucket}/{out_key}: {document['status']} {shown}", file=sys.stderr)


def own_bucket(settings: Settings, bucket: str) -> Settings:
    """The settings of a backfill of ``bucket``: ``SOURCE_BUCKETS`` names it (set to it where
    unset, as the template sets it to its bucket, so the function's rule "only its own buckets"
    applies here too); a bucket the setting leaves out is refused before anything is listed."""
    if settings.source_buckets is None:
        return dataclasses.replace(settings, source_buckets=frozenset({bucket}))
    if not settings.owns(bucket):
        raise CliError(f"SOURCE_BUCKETS does not name {bucket}: the function would refuse it")
    return settings


def local_main(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    progress = not args.no_progress and sys.stderr.isatty()
    backfill = LocalBackfill(settings, workers=args.workers, progress=progress)
    with contextlib.ExitStack() as stack:
        bucket = args.bucket
        seeded: list[str] = []
        if args.embedded_demo:
            endpoint = stack.enter_context(embedded_s3())
            bucket = bucket or DEMO_BUCKET
            seeded = seed_demo(backfill.client(), bucket, settings.input_suffix)
            print(
                f"embedded S3 (moto) at {endpoint}: seeded {len(seeded)} objects into "
                f"s3://{bucket}",
                file=sys.stderr,
            )
        if not bucket:
            raise CliError("--bucket is required (or --embedded-demo)")
        backfill.settings = settings = own_bucket(settings, bucket)
        if args.dry_run:
            tally = backfill.dry_run(bucket, args.prefix)
            counts = {"listed": tally.listed, "ignored": tally.ignored, "orphans": backfill.orphans}
            print(json.dumps({**counts, "dry_run": True}))
            return EXIT_OK
        try:
            tally = backfill.run(bucket, args.prefix)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            print(json.dumps(backfill.tally.summary()))
            return EXIT_INTERRUPTED
        except CliError:
            if backfill.tally.listed:  # part of the bucket was done: say how much
                print(json.dumps(backfill.tally.summary()))
            raise
        if seeded:
            show_demo_results(backfill.client(), bucket, seeded, settings)
    print(json.dumps(tally.summary()))
    return EXIT_FAILED if tally.failed else EXIT_OK


# --- S3 Batch Operations --------------------------------------------------------------------


def aws_client(service: Literal["s3control", "sts", "cloudformation"]) -> Any:
    """A client for the control-plane services (s3control, sts, cloudformation), with the same
    retry mode as the function's S3 client. Typed ``Any``: their stubs are not dev
    dependencies. Tests replace this function to hand out stubbed clients."""
    return boto3.client(service, config=Config(retries={"mode": "standard"}))


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    """CreateJob's idempotency token: a retried request never makes a second job."""
    return str(uuid.uuid4())


def manifest_row(bucket: str, key: str) -> bytes:
    """One line of a Batch Operations CSV manifest. Keys must be URL-encoded there: ``quote``
    encodes a space as ``%20`` and ``+`` as ``%2B``, so the function's ``unquote_plus`` gets the
    key back exactly; commas, quotes and newlines are encoded too, so no CSV quoting is needed."""
    return f"{bucket},{quote(key, safe='/')}\n".encode()


@dataclass(frozen=True)
class Deployment:
    """What a job needs of the deployed stack."""

    bucket: str
    function_arn: str
    role_arn: str

    @property
    def partition(self) -> str:
        # arn:<partition>:lambda:...: the job's bucket ARNs are in the function's partition.
        parts = self.function_arn.split(":")
        return parts[1] if len(parts) > 1 and parts[1] else "aws"

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"


@dataclass(frozen=True)
class Manifest:
    """A manifest a job can read: CreateJob's ``Manifest`` and where it is."""

    request: dict[str, Any]
    location: str
    keys: int | None = None  # known for a manifest written here


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise CliError(describe_aws_error(error, f"reading the outputs of stack {stack}")) from None
    return {out["OutputKey"]: out["OutputValue"] for out in stacks[0].get("Outputs", [])}


def resolve_deployment(args: argparse.Namespace) -> Deployment:
    """The bucket, function and role: flags win, the stack's outputs fill in the rest."""
    outputs = stack_outputs(aws_client("cloudformation"), args.stack) if args.stack else {}
    values = {
        "--bucket": args.bucket or outputs.get("BucketName"),
        "--function-arn": args.function_arn or outputs.get("FunctionArn"),
        "--role-arn": args.role_arn or outputs.get("BatchOperationsRoleArn"),
    }
    found = {flag: value for flag, value in values.items() if value}
    missing = [flag for flag in values if flag not in found]
    if missing:
        source = f"stack {args.stack} has no such output" if args.stack else "or give --stack"
        raise CliError(f"{', '.join(missing)} required ({source})")
    return Deployment(found["--bucket"], found["--function-arn"], found["--role-arn"])


def write_manifest(
    client: S3Client,
    deployment: Deployment,
    *,
    prefix: str,
    manifest_bucket: str,
    settings: Settings,
    name: str,
    progress: bool,
) -> Manifest | None:
    """List the bucket and upload a CSV manifest of its inputs to
    ``s3://<manifest bucket>/batch-manifests/<name>.csv``; ``None`` if there are none (a job
    over an empty manifest fails). Spooled to a temporary file: millions of keys are not held
    in memory."""
    bucket = deployment.bucket
    key = f"{MANIFEST_PREFIX}/{name}.csv"
    bar = tqdm(desc="manifest", unit=" keys", file=sys.stderr, disable=not progress)
    with tempfile.TemporaryFile() as spool:
        count = 0
        try:
            for listed, _etag in list_objects(client, bucket, prefix):
                if settings.is_input(listed):
                    spool.write(manifest_row(bucket, listed))
                    count += 1
                    bar.update(1)
        except (ClientError, BotoCoreError) as error:
            raise CliError(describe_aws_error(error, f"listing s3://{bucket}/{prefix}")) from None
        finally:
            bar.close()
        if not count:
            return None
        spool.seek(0)
        try:
            put = client.put_object(
                Bucket=manifest_bucket, Key=key, Body=spool, ContentType="text/csv"
            )
        except (ClientError, BotoCoreError) as error:
            doing = f"uploading the manifest to s3://{manifest_bucket}/{key}"
            raise CliError(describe_aws_error(error, doing)) from None
    request = {
        "Spec": {"Format": CSV_MANIFEST_FORMAT, "Fields": ["Bucket", "Key"]},
        "Location": {
            "ObjectArn": f"{deployment.bucket_arn(manifest_bucket)}/{key}",
            "ETag": put["ETag"].strip('"'),
        },
    }
    return Manifest(request, f"s3://{manifest_bucket}/{key}", keys=count)


def inventory_manifest(client: S3Client, deployment: Deployment, uri: str) -> Manifest:
    """An S3 Inventory report's manifest.json as the job's manifest; the job must name its
    ETag, which a HEAD gives."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise CliError(f"--inventory-manifest must be s3://bucket/path/manifest.json, got {uri}")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            raise CliError(f"inventory manifest {uri} does not exist") from None
        raise CliError(describe_aws_error(error, f"reading {uri}")) from None
    except BotoCoreError as error:
        raise CliError(describe_aws_error(error, f"reading {uri}")) from None
    request = {
        "Spec": {"Format": INVENTORY_MANIFEST_FORMAT},
        "Location": {
            "ObjectArn": f"{deployment.bucket_arn(bucket)}/{key}",
            "ETag": head["ETag"].strip('"'),
        },
    }
    return Manifest(request, uri)


def account_id(args: argparse.Namespace) -> str:
    if args.account_id:
        return str(args.account_id)
    try:
        return str(aws_client("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as error:
        raise CliError(describe_aws_error(error, "finding the account id (STS)")) from None


def job_request(
    args: argparse.Namespace,
    deployment: Deployment,
    manifest: Manifest,
    *,
    account: str,
    token: str,
) -> dict[str, Any]:
    """CreateJob's parameters: invoke the function (schema 2.0, which names the bucket by name)
    for each manifest row, as the stack's Batch Operations role, with a report of every task."""
    description = args.description or (
        f"market-totals backfill of {manifest.location} by {PROG} batch-job"
    )
    return {
        "AccountId": account,
        "ConfirmationRequired": args.confirm,
        "Operation": {
            "LambdaInvoke": {
                "FunctionArn": deployment.function_arn,
                "InvocationSchemaVersion": "2.0",
            }
        },
        "Report": {
            "Bucket": deployment.bucket_arn(args.report_bucket or deployment.bucket),
            "Prefix": REPORT_PREFIX,
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "AllTasks",
        },
        "ClientRequestToken": token,
        "Manifest": manifest.request,
        "Description": description[:MAX_DESCRIPTION],
        "Priority": args.priority,
        "RoleArn": deployment.role_arn,
    }


def progress_line(job: dict[str, Any]) -> str:
    summary = job.get("ProgressSummary", {})
    total = summary.get("TotalNumberOfTasks")
    succeeded = summary.get("NumberOfTasksSucceeded", 0)
    failed = summary.get("NumberOfTasksFailed", 0)
    tasks = f"{succeeded + failed}/{total}" if total is not None else f"{succeeded + failed}"
    return f"{job.get('Status')}: {tasks} tasks done ({succeeded} succeeded, {failed} failed)"


def wait_for_job(
    s3control: Any,
    account: str,
    job_id: str,
    *,
    interval: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Poll describe_job until the job ends; ``None`` if it has not within ``timeout`` seconds
    (the job goes on regardless). Each change of progress is a line on stderr."""
    deadline = clock() + timeout
    last = ""
    while True:
        try:
            job: dict[str, Any] = s3control.describe_job(AccountId=account, JobId=job_id)["Job"]
        except (ClientError, BotoCoreError) as error:
            raise CliError(describe_aws_error(error, f"describing job {job_id}")) from None
        line = progress_line(job)
        if line != last:
            print(f"job {job_id}: {line}", file=sys.stderr)
            last = line
        if job.get("Status") in TERMINAL_STATUSES:
            return job
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        sleep(min(interval, remaining))


def batch_main(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.inventory_manifest and args.prefix:
        raise CliError("--prefix filters a listing; an inventory manifest lists what it lists")
    deployment = resolve_deployment(args)
    account = account_id(args)
    s3 = storage.new_client()
    token = new_token()
    if args.inventory_manifest:
        manifest = inventory_manifest(s3, deployment, args.inventory_manifest)
    else:
        written = write_manifest(
            s3,
            deployment,
            prefix=args.prefix,
            manifest_bucket=args.manifest_bucket or deployment.bucket,
            settings=settings,
            name=f"{utc_now():%Y%m%dT%H%M%SZ}-{token[:8]}",
            progress=not args.no_progress and sys.stderr.isatty(),
        )
        if written is None:
            where = f"s3://{deployment.bucket}/{args.prefix}"
            print(f"no keys ending with {settings.input_suffix} under {where}: no job created")
            return EXIT_OK
        manifest = written
    s3control = aws_client("s3control")
    request = job_request(args, deployment, manifest, account=account, token=token)
    try:
        job_id = str(s3control.create_job(**request)["JobId"])
    except (ClientError, BotoCoreError) as error:
        raise CliError(describe_aws_error(error, "creating the Batch Operations job")) from None
    region = s3control.meta.region_name
    where = f"--account-id {account} --job-id {job_id} --region {region}"
    report_bucket = args.report_bucket or deployment.bucket
    report = f"s3://{report_bucket}/{REPORT_PREFIX}/job-{job_id}/"
    count = f"{manifest.keys} keys in " if manifest.keys is not None else ""
    print(f"created S3 Batch Operations job {job_id} over {count}{manifest.location}")
    print(f"check it: aws s3control describe-job {where}")
    if args.confirm:
        print(
            f"it waits for confirmation: aws s3control update-job-status {where} "
            "--requested-job-status Ready"
        )
    print(f"completion report: {report}")
    if not args.wait:
        return EXIT_OK
    job = wait_for_job(
        s3control, account, job_id, interval=args.poll_interval, timeout=args.timeout
    )
    if job is None:
        print(f"{PROG}: job {job_id} still running after {args.timeout:g} s", file=sys.stderr)
        return EXIT_FAILED
    reasons = "; ".join(
        one_line(f"{reason.get('FailureCode', '')}: {reason.get('FailureReason', '')}")
        for reason in job.get("FailureReasons", [])
    )
    print(
        f"job {job_id} {progress_line(job)}; report {report}" + (f"; {reasons}" if reasons else "")
    )
    failed = job.get("ProgressSummary", {}).get("NumberOfTasksFailed", 0)
    return EXIT_OK if job.get("Status") == "Complete" and not failed else EXIT_FAILED


# --- the command line -----------------------------------------------------------------------


def workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_WORKERS}, got {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value:g}")
    return value


def local_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Total the inputs already in a bucket, on this machine, through the function's own "
            "processing (resumable: a rerun skips inputs whose result is current). Uses your AWS "
            "environment: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_S3, and the function's "
            "settings (INPUT_SUFFIX, RESULT_NAME, RESULT_BUCKET, MAX_INPUT_BYTES)."
        ),
        epilog=(
            f"For buckets one machine should not walk: {PROG} batch-job --help (an S3 Batch "
            "Operations job that invokes the deployed function). Prints a one-line JSON summary "
            "on stdout; exit status 0 if nothing failed, 1 if some objects failed, 2 if the run "
            "could not start."
        ),
    )
    parser.add_argument(
        "--bucket", help="the bucket to backfill (default: none, required unless --embedded-demo)"
    )
    parser.add_argument(
        "--prefix",
        default="",
        help="only keys starting with this; end it with / for a folder (default: the whole bucket)",
    )
    parser.add_argument(
        "--workers",
        type=workers,
        default=DEFAULT_WORKERS,
        help=f"objects processed at once, 1 to {MAX_WORKERS} (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the inputs a run would process and the results it would check for orphans "
        "(marked '(orphan?)'), reading and writing none (default: off)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on stderr (default: off; the bar shows only on a terminal)",
    )
    parser.add_argument(
        "--embedded-demo",
        action="store_true",
        help=(
            "start an embedded S3 (moto), seed demo objects into --bucket (default bucket: "
            f"{DEMO_BUCKET}) and backfill them: no AWS account needed (default: off)"
        ),
    )
    return parser


def batch_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=f"{PROG} batch-job",
        description=(
            "Create an S3 Batch Operations job that invokes the deployed function for every input: "
            "for buckets one machine should not walk. The manifest is written from a listing "
            f"(s3://<manifest bucket>/{MANIFEST_PREFIX}/<timestamp>.csv, keys ending with "
            "INPUT_SUFFIX) or is an S3 Inventory report you name."
        ),
        epilog=(
            "Prints the job id and the `aws s3control describe-job` command to check it. Exit "
            "status 0 once the job is created (with --wait: once it completed without a failed "
            "task), 1 if it failed or --wait timed out, 2 if it could not be created."
        ),
    )
    parser.add_argument(
        "--stack",
        help=(
            "the deployed stack: BucketName, FunctionArn and BatchOperationsRoleArn are read from "
            "its outputs (default: none; give the next three flags instead)"
        ),
    )
    parser.add_argument(
        "--bucket", help="the bucket to backfill (default: the stack's BucketName output)"
    )
    parser.add_argument(
        "--function-arn", help="the function to invoke (default: the stack's FunctionArn output)"
    )
    parser.add_argument(
        "--role-arn",
        help="the role the job runs as (default: the stack's BatchOperationsRoleArn output)",
    )
    parser.add_argument(
        "--prefix",
        default="",
        help="list only keys starting with this for the manifest (default: the whole bucket)",
    )
    parser.add_argument(
        "--inventory-manifest",
        metavar="S3_URI",
        help=(
            "s3://bucket/path/manifest.json of a CSV S3 Inventory report to use as the manifest "
            "instead of a listing (default: none, list the bucket)"
        ),
    )
    parser.add_argument(
        "--manifest-bucket",
        help=f"where the written manifest goes, under {MANIFEST_PREFIX}/ (default: --bucket)",
    )
    parser.add_argument(
        "--report-bucket",
        help=f"where the completion report goes, under {REPORT_PREFIX}/ (default: --bucket)",
    )
    parser.add_argument("--account-id", help="the job's account (default: the caller's, from STS)")
    parser.add_argument(
        "--priority",
        type=int,
        default=DEFAULT_PRIORITY,
        help="the job's priority, higher runs first (default: %(default)s)",
    )
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="create the job suspended, to run once confirmed (default: off, it runs at once)",
    )
    parser.add_argument(
        "--description",
        help="the job's description (default: names the manifest)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="poll the job until it ends and print its task counts (default: off)",
    )
    parser.add_argument(
        "--poll-interval",
        type=seconds,
        default=DEFAULT_POLL_INTERVAL,
        help="seconds between polls with --wait (default: %(default)g)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_WAIT_TIMEOUT,
        help="give up waiting after this many seconds; the job goes on (default: %(default)g)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar while listing (default: off; the bar shows only on a terminal)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    batch = bool(argv) and argv[0] == "batch-job"
    args = batch_parser().parse_args(argv[1:]) if batch else local_parser().parse_args(argv)
    try:
        return batch_main(args) if batch else local_main(args)
    except CliError as error:
        message = str(error)
    except ConfigurationError as error:
        message = f"bad setting: {error}"
    except (ClientError, BotoCoreError) as error:
        message = describe_aws_error(error, "AWS")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERROR
