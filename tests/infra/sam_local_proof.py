"""Prove ``sam local invoke`` end to end: ``make local-invoke-proof`` (run by ``.ci/run``).

Starts a moto S3 server on the Docker bridge address of this host (where the function's
container reaches it as ``host.docker.internal``), uploads the objects the event names, runs
``sam local invoke`` with ``scripts/sam_local/env.json`` pointed at that server, and checks the
handler's summary and the result object it wrote. Exits non-zero, saying why, on any difference.

Only local addresses are used: the moto server listens on the bridge address, nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3

from localrun.invoke import EVENTS, FAKE_AWS_ENV, ROOT, event_keys, seed_event_objects

FUNCTION = "MarketTotalsFunction"


class ProofFailed(Exception):
    """The local invoke did not do what the contract says."""


def bridge_address() -> str:
    """The host's address on Docker's default bridge: the container's host-gateway."""
    docker = shutil.which("docker") or "docker"
    out = subprocess.run(
        [docker, "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out or "172.17.0.1"


@contextlib.contextmanager
def moto_server(address: str) -> Iterator[int]:
    """A moto server on ``address`` and a free port; yields the port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=address, port=0, verbose=False)
    server.start()
    try:
        yield int(server.get_host_and_port()[1])
    finally:
        server.stop()


def env_vars_for(template_env: dict[str, dict[str, str]], port: int) -> dict[str, dict[str, str]]:
    """``scripts/sam_local/env.json`` with each endpoint URL's port replaced by the moto server's,
    so that the file users run is the one proven."""
    if "AWS_ENDPOINT_URL_S3" not in template_env.get(FUNCTION, {}):
        raise ProofFailed(f"scripts/sam_local/env.json sets no AWS_ENDPOINT_URL_S3 for {FUNCTION}")
    result: dict[str, dict[str, str]] = {}
    for function, variables in template_env.items():
        result[function] = {}
        for name, value in variables.items():
            is_endpoint = name.startswith("AWS_ENDPOINT_URL")
            result[function][name] = _with_port(value, port) if is_endpoint else value
    return result


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def invoke(sam: str, template: str, event: Path, env_file: Path) -> dict[str, Any]:
    """Run ``sam local invoke``; its stdout's last line is the handler's return value."""
    command = [
        sam,
        "local",
        "invoke",
        FUNCTION,
        "--template",
        template,
        # SAM looks for samconfig.toml beside the template; the project's is what is proven
        # (its local_invoke settings add host.docker.internal).
        "--config-file",
        str(ROOT / "samconfig.toml"),
        "--event",
        str(event),
        "--env-vars",
        str(env_file),
        # No registry is reachable here: the base image is the local stand-in.
        "--skip-pull-image",
        "--parameter-overrides",
        "Architectures=x86_64",
    ]
    # Fake credentials, so SAM hands the container nothing real and looks nothing up.
    env = {**os.environ, **FAKE_AWS_ENV, "SAM_CLI_TELEMETRY": "0"}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    sys.stderr.write(done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise ProofFailed(f"sam local invoke exited {done.returncode}: {done.stdout}")
    summary: dict[str, Any] = json.loads(lines[-1])
    if "errorType" in summary:
        raise ProofFailed(f"the function failed: {summary}")
    return summary


def check(summary: dict[str, Any], results: dict[str, bytes], expect_total: Decimal) -> None:
    statuses = [record["status"] for record in summary.get("records", [])]
    if statuses != ["ok"]:
        raise ProofFailed(f"expected one ok record, got {summary}")
    for location, body in results.items():
        document = json.loads(body, parse_float=Decimal, parse_int=Decimal)
        if document.get("status") != "ok" or document.get("total") != expect_total:
            raise ProofFailed(f"{location}: expected status ok, total {expect_total}: {body!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam", default="sam")
    parser.add_argument("--template", required=True, help="the template `sam build` wrote")
    parser.add_argument("--event", type=Path, default=EVENTS / "put.json")
    parser.add_argument("--env-vars", type=Path, default=ROOT / "scripts/sam_local/env.json")
    parser.add_argument("--expect-total", type=Decimal, default=Decimal(400))
    args = parser.parse_args(argv)

    event = json.loads(args.event.read_text(encoding="utf-8"))
    address = bridge_address()
    started = time.monotonic()
    with moto_server(address) as port, tempfile.TemporaryDirectory() as tmp:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://{address}:{port}",
            region_name=FAKE_AWS_ENV["AWS_REGION"],
            aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        if not seed_event_objects(client, event):
            raise ProofFailed(f"{args.event} names no object under events/objects/")
        env_file = Path(tmp) / "env.json"
        template_env = json.loads(args.env_vars.read_text(encoding="utf-8"))
        env_file.write_text(json.dumps(env_vars_for(template_env, port)), encoding="utf-8")

        summary = invoke(args.sam, args.template, args.event, env_file)
        results = {}
        for (bucket, _), record in zip(event_keys(event), summary["records"], strict=True):
            if "result_key" in record:
                body = client.get_object(Bucket=bucket, Key=record["result_key"])["Body"].read()
                results[f"s3://{bucket}/{record['result_key']}"] = body
        if not results:
            raise ProofFailed(f"no result object was written: {summary}")
        check(summary, results, args.expect_total)
    for location, body in results.items():
        print(f"{location}: {body.decode()}")
    print(f"sam local invoke proven in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ProofFailed as failure:
        print(f"local invoke proof FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
