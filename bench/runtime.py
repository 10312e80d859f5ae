"""``make runtime-bench``: the function and a tutorial-sized one, side by side, inside a Lambda
runtime (LocalStack's own Lambda, in Docker: the chain of ``make deploy-test``), and the section
of docs/benchmarks.md between ``<!-- runtime:begin -->`` and ``<!-- runtime:end -->``.

Why: every other figure of docs/benchmarks.md is measured in a plain process; this one is the
packaged artifact, deployed with ``sam deploy``, started by a Lambda runtime (the runtime
interface client in a container) and timed by the runtime's own REPORT line.

- **Duration** is the REPORT line's, for an invocation with a 1 KB input (10 products): the
  first in a new container (cold) and the following ones (warm).
- **Cold start**: LocalStack's Lambda init prints no ``Init Duration`` in its REPORT line, so
  the init phase is measured from the client: the round trip of the first invocation in a new
  container (LocalStack starts the container, the runtime imports the handler, the invocation
  runs) less the median round trip of a warm one. LocalStack's container start is in both
  functions' figure alike; the difference between them is their init and first call.
- Each round changes an environment variable of both functions (LocalStack then replaces their
  containers), so each round starts cold; medians over the rounds and over the warm calls.
- The tutorial function: GET, ``json.loads``, ``sum``, PUT, its client created in the handler
  (``bench/tutorial_lambda.py``); boto3 is packaged with it, since the stand-in runtime image
  has none (AWS's python3.13 image has one; either way it is imported at init).

    .venv/bin/python bench/runtime.py [--lambda-init PATH] [--rounds 5] [--warm 10]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import platform
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from docblock import rewrite_block

from tests.infra.deployed import chain as chain_module
from tests.infra.deployed import stack

ROOT: Final = Path(__file__).resolve().parents[1]


DOC: Final = ROOT / "docs" / "benchmarks.md"
BEGIN: Final = "<!-- runtime:begin -->"
END: Final = "<!-- runtime:end -->"
TUTORIAL_SOURCE: Final = ROOT / "bench" / "tutorial_lambda.py"
#: What the tutorial zip takes from the function's build: boto3 and what it imports.
BOTO3_PACKAGES: Final = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six.py",
)
INPUT_KEY: Final = "bench/market_infos.json"
INPUT: Final = json.dumps({"products": [{"name": f"p{i}", "price": 10 + i} for i in range(10)]})


@dataclass
class Function:
    """One of the two functions under measurement."""

    label: str
    name: str
    cold_ms: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    cold_trip_ms: list[float] = field(default_factory=list)
    warm_trip_ms: list[float] = field(default_factory=list)

    def overhead_ms(self) -> list[float]:
        """Each cold round trip less the median warm one."""
        warm = statistics.median(self.warm_trip_ms)
        return [trip - warm for trip in self.cold_trip_ms]


def tutorial_zip(build_dir: Path) -> bytes:
    """The tutorial's handler as ``tutorial.py``, with boto3 from the function's build."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(TUTORIAL_SOURCE, "tutorial.py")
        for name in BOTO3_PACKAGES:
            path = build_dir / name
            if path.is_file():
                archive.write(path, name)
                continue
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    archive.write(file, file.relative_to(build_dir).as_posix())
    return buffer.getvalue()


def invoke(lam: Any, name: str, event: dict[str, Any]) -> tuple[stack.Report, float]:
    """A synchronous invocation: the REPORT line of its log tail, and its round trip (ms)."""
    started = time.perf_counter()
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    payload = response["Payload"].read()
    trip = (time.perf_counter() - started) * 1000
    if response.get("FunctionError"):
        raise RuntimeError(f"{name} failed: {payload[:500]!r}")
    tail = base64.b64decode(response["LogResult"]).decode("utf-8", "replace").splitlines()
    (report,) = stack.reports(tail)
    return report, trip


def set_round(lam: Any, name: str, number: int) -> None:
    """A new environment variable value: LocalStack replaces the container, the next call is
    cold."""
    variables = (
        lam.get_function_configuration(FunctionName=name)
        .get("Environment", {})
        .get("Variables", {})
    )
    variables.update(BENCH_ROUND=str(number))
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    stack.wait_for(
        lambda: (
            True
            if lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "Successful"
            else None
        ),
        timeout=120,
        what=f"{name} updated",
    )


@dataclass
class Inputs:
    """A versioned bucket without notifications: before each invocation (untimed) the input is
    uploaded again, a new version with a later sequencer, so every call of ours is a fresh
    record that replaces an existing result (HEAD, GET, PUT), as when a market's file is
    updated; the tutorial reads the same object."""

    s3: Any
    bucket: str
    uploads: int = 0

    def fresh_event(self) -> dict[str, Any]:
        self.uploads += 1
        put: dict[str, Any] = self.s3.put_object(
            Bucket=self.bucket, Key=INPUT_KEY, Body=INPUT.encode()
        )
        return stack.s3_notification(
            {
                "bucket": self.bucket,
                "key": INPUT_KEY,
                "version_id": put["VersionId"],
                "etag": put["ETag"].strip('"'),
                "size": len(INPUT),
                "sequencer": f"{self.uploads:018X}",
            }
        )


def measure(
    chain: chain_module.Chain,
    functions: list[Function],
    inputs: Inputs,
    *,
    rounds: int,
    warm: int,
    progress: Callable[[str], None],
) -> None:
    """Alternate the functions within each round, so that both see the same machine."""
    lam = stack.client(chain, "lambda")
    for number in range(rounds):
        for function in functions:
            set_round(lam, function.name, number)
        for function in functions:
            report, trip = invoke(lam, function.name, inputs.fresh_event())
            function.cold_ms.append(report.duration_ms)
            function.cold_trip_ms.append(trip)
        for _ in range(warm):
            for function in functions:
                report, trip = invoke(lam, function.name, inputs.fresh_event())
                function.warm_ms.append(report.duration_ms)
                function.warm_trip_ms.append(trip)
        progress(f"round {number + 1}/{rounds} done")


def section(functions: list[Function], rounds: int, warm: int, seconds: float) -> str:
    """The Markdown between the runtime markers."""
    ours, tutorial = functions

    def row(label: str, pick: Callable[[Function], list[float]]) -> str:
        a, b = statistics.median(pick(ours)), statistics.median(pick(tutorial))
        return f"| {label} | {a:.1f} ms | {b:.1f} ms | {a / b:.2f}× |"

    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return "\n".join(
        [
            "",
            f"Measured by `make runtime-bench` on {when} ({platform.machine()}, 2 cores shared; "
            f"{rounds} cold starts and {rounds * warm} warm invocations per function, "
            f"alternating; {seconds:.0f} s). Regenerated by each run; edit "
            "`bench/runtime.py`, not this section.",
            "",
            "## Inside a Lambda runtime (LocalStack's Lambda)",
            "",
            "Both functions deployed into the same LocalStack (the chain of `make deploy-test`: "
            "this project's python3.13 runtime image, 512 MB, x86_64), a 1 KB input of 10 "
            "products, S3 on the same machine. Medians:",
            "",
            "| phase | market-totals | tutorial (GET, json.loads, sum, PUT) | ratio |",
            "|---|---:|---:|---:|",
            row("cold start: first call's round trip less a warm one's", Function.overhead_ms),
            row("first call in a new container: Duration (REPORT)", lambda f: f.cold_ms),
            row("warm call: Duration (REPORT)", lambda f: f.warm_ms),
            row("warm call: round trip from the client", lambda f: f.warm_trip_ms),
            "",
            "LocalStack's Lambda init prints no `Init Duration`, so the cold start is measured "
            "from the client: the first call's round trip in a new container (LocalStack "
            "starts the container, the runtime imports the handler, the call runs) less the "
            "median warm round trip; LocalStack's container start is in both columns alike. "
            "Duration is the runtime's REPORT line. Before each call (untimed) the input is "
            "uploaded again (a new version, a "
            "later sequencer, in a bucket without notifications), so each call of ours is a "
            "fresh record replacing an existing result: HEAD, GET, conditional PUT, against "
            "the tutorial's GET and PUT (no ordering, no validation, no exact decimals).",
            "",
        ]
    )


def write_section(text: str) -> None:
    rewrite_block(
        DOC,
        (BEGIN, END),
        [text],
        if_missing=lambda document, block: document.replace(
            "<!-- bench:end -->\n", f"<!-- bench:end -->\n\n{block}\n", 1
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lambda-init", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm", type=int, default=10)
    args = parser.parse_args(argv)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {message}", flush=True)

    with tempfile.TemporaryDirectory(prefix="runtime-bench-") as root:
        try:
            running = chain_module.running(Path(root), init=args.lambda_init)
            chain = running.__enter__()
        except chain_module.Missing as error:
            print(error, file=sys.stderr)
            return 1
        try:
            progress(f"chain up at {chain.endpoint}")
            outputs = stack.deploy(
                chain, "mt-runtime-bench", {"Architectures": "x86_64", "LogLevel": "INFO"}
            )
            ours = outputs["FunctionName"]
            s3, lam = stack.client(chain, "s3"), stack.client(chain, "lambda")
            role = lam.get_function_configuration(FunctionName=ours)["Role"]
            lam.create_function(
                FunctionName="tutorial-total",
                Runtime="python3.13",
                Architectures=["x86_64"],
                Handler="tutorial.lambda_handler",
                Role=role,
                MemorySize=512,
                Timeout=30,
                Code={
                    "ZipFile": tutorial_zip(stack.BUILT_TEMPLATE.parent / "MarketTotalsFunction")
                },
            )
            stack.wait_for(
                lambda: (
                    True
                    if lam.get_function_configuration(FunctionName="tutorial-total")["State"]
                    == "Active"
                    else None
                ),
                timeout=120,
                what="the tutorial function",
            )
            progress("both functions deployed")
            inputs = Inputs(s3, "runtime-bench-inputs")
            s3.create_bucket(Bucket=inputs.bucket)
            s3.put_bucket_versioning(
                Bucket=inputs.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
            functions = [
                Function("market-totals", ours),
                Function("tutorial", "tutorial-total"),
            ]
            measure(chain, functions, inputs, rounds=args.rounds, warm=args.warm, progress=progress)
        finally:
            running.__exit__(None, None, None)
    write_section(section(functions, args.rounds, args.warm, time.monotonic() - started))
    for function in functions:
        print(
            f"{function.label}: cold start {statistics.median(function.overhead_ms()):.1f} ms,"
            f" cold {statistics.median(function.cold_ms):.1f} ms, warm "
            f"{statistics.median(function.warm_ms):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
