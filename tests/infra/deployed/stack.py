"""``sam deploy`` / ``sam delete`` onto the chain (chain.py), and what is read back: the stack's
outputs, the function's log lines and its REPORT lines.

Shared by the deployed suite (tests/end_to_end/deployed/) and the runtime benchmark
(bench/runtime.py).
The SAM CLI runs from ``.venv-tools`` with the committed samconfig.toml (its ``default``
environment: ``CAPABILITY_IAM``, ``resolve_s3``), pointed at LocalStack by ``AWS_ENDPOINT_URL``
and fake credentials; only the stack name and the parameters are given here.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import boto3

from tests.infra.deployed.chain import REGION, ROOT, Chain

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SAM: Final = ROOT / ".venv-tools" / "bin" / "sam"
SAMCONFIG: Final = ROOT / "samconfig.toml"
#: What `make deploy-test` builds: `sam build --parameter-overrides Architectures=x86_64`.
BUILT_TEMPLATE: Final = ROOT / ".aws-sam" / "build-x86_64" / "template.yaml"
SAM_TIMEOUT: Final = 600

T = TypeVar("T")


class DeployError(RuntimeError):
    """A SAM CLI command failed; the message ends with its output."""


def sam(chain: Chain, *args: str, sam_bin: Path = SAM) -> str:
    """Run the SAM CLI against the chain's LocalStack; its output, or ``DeployError``."""
    if not sam_bin.exists():
        raise DeployError(f"{sam_bin} is missing: `make deploy-test` installs the SAM CLI there")
    done = subprocess.run(
        [str(sam_bin), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=chain.client_env(),
        timeout=SAM_TIMEOUT,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-40:])
        raise DeployError(f"sam {args[0]} failed ({done.returncode}):\n{tail}")
    return output


def client(chain: Chain, service: str) -> Any:
    """A boto3 client of ``service`` bound to the chain's LocalStack with fake credentials."""
    env = chain.client_env({})
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=chain.endpoint,
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def deploy(
    chain: Chain,
    stack_name: str,
    parameters: Mapping[str, str],
    *,
    template: Path = BUILT_TEMPLATE,
    sam_bin: Path = SAM,
) -> dict[str, str]:
    """``sam deploy`` (create or update) with the committed samconfig.toml; the stack's outputs."""
    if not template.is_file():
        raise DeployError(f"{template} is missing: `sam build` (make deploy-test) writes it")
    overrides = [f"{name}={value}" for name, value in parameters.items()]
    sam(
        chain,
        "deploy",
        "--config-file",
        str(SAMCONFIG),
        "--config-env",
        "default",
        "--template-file",
        str(template),
        "--stack-name",
        stack_name,
        "--s3-prefix",
        stack_name,
        "--parameter-overrides",
        *overrides,
        "--no-progressbar",
        sam_bin=sam_bin,
    )
    return outputs(chain, stack_name)


def outputs(chain: Chain, stack_name: str) -> dict[str, str]:
    """The stack's outputs by key."""
    stacks = client(chain, "cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}


def delete(chain: Chain, stack_name: str, *, sam_bin: Path = SAM) -> None:
    """``sam delete`` without prompts (the stack and its packaged artifacts)."""
    sam(chain, "delete", "--stack-name", stack_name, "--region", REGION, "--no-prompts",
        sam_bin=sam_bin)  # fmt: skip


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than ``None``; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.5)


def read_json(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """The JSON document at ``bucket/key``, or ``None`` where there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    # Decimals, as the function writes them: 400.00 stays 400.00, 0.3 stays exact.
    document: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return document


# --- the function's log group ---------------------------------------------------------------


def log_group_of(function_name: str) -> str:
    """Where LocalStack's Lambda writes a function's logs: ``/aws/lambda/<name>``. (It does not
    follow the function's ``LoggingConfig.LogGroup``: the template's own group stays empty on
    LocalStack; on AWS the lines go there.)"""
    return f"/aws/lambda/{function_name}"


def log_lines(logs: Any, group: str) -> list[str]:
    """Every line of the log group, oldest first (an empty list before the group exists)."""
    lines: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group}
    while True:
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return []
        lines.extend(event["message"].rstrip("\n") for event in page.get("events", []))
        token = page.get("nextToken")
        if not token:
            return lines
        kwargs["nextToken"] = token


def structured(lines: list[str], message: str) -> list[dict[str, Any]]:
    """The JSON lines (Powertools' structured logs) whose ``message`` is ``message``."""
    found = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("message") == message:
            found.append(document)
    return found


_REPORT_FIELD = re.compile(r"([A-Za-z][A-Za-z ]*?): ([0-9.]+) (ms|MB)")


@dataclass(frozen=True)
class Report:
    """One REPORT line of the Lambda runtime."""

    request_id: str
    duration_ms: float
    billed_duration_ms: float
    memory_size_mb: float
    max_memory_used_mb: float
    init_duration_ms: float | None

    @classmethod
    def parse(cls, line: str) -> Report:
        if not line.startswith("REPORT RequestId: "):
            raise ValueError(f"not a REPORT line: {line!r}")
        request_id = line.split()[2]
        fields = {name.strip(): float(value) for name, value, _ in _REPORT_FIELD.findall(line)}
        return cls(
            request_id=request_id,
            duration_ms=fields["Duration"],
            billed_duration_ms=fields["Billed Duration"],
            memory_size_mb=fields["Memory Size"],
            max_memory_used_mb=fields["Max Memory Used"],
            init_duration_ms=fields.get("Init Duration"),
        )


def reports(lines: list[str]) -> list[Report]:
    """Every REPORT line of ``lines``, parsed."""
    return [Report.parse(line) for line in lines if line.startswith("REPORT RequestId: ")]


# --- events as S3 and EventBridge send them, for a redelivered (duplicate) event -------------


def s3_notification(source: Mapping[str, Any]) -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` notification naming the object version of a result's
    ``source`` (bucket, key, version_id, etag, size, sequencer): what S3 sends again when it
    delivers an event twice."""
    obj: dict[str, Any] = {
        "key": urllib.parse.quote_plus(source["key"], safe="/"),
        "size": source["size"],
        "eTag": source["etag"],
    }
    if source.get("version_id"):
        obj["versionId"] = source["version_id"]
    if source.get("sequencer"):
        obj["sequencer"] = source["sequencer"]
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {
                        "name": source["bucket"],
                        "arn": f"arn:aws:s3:::{source['bucket']}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def eventbridge_detail(source: Mapping[str, Any]) -> dict[str, Any]:
    """The ``detail`` of S3's EventBridge ``Object Created`` event for a result's ``source``."""
    obj: dict[str, Any] = {"key": source["key"], "size": source["size"], "etag": source["etag"]}
    if source.get("version_id"):
        obj["version-id"] = source["version_id"]
    if source.get("sequencer"):
        obj["sequencer"] = source["sequencer"]
    return {
        "version": "0",
        "bucket": {"name": source["bucket"]},
        "object": obj,
        "reason": "PutObject",
    }
