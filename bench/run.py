"""``make bench``: the README's benchmark table, measured against a moto S3 server on loopback.

Every measurement runs in a fresh process (``bench/worker.py``); compared commands alternate
within each round, and the table gives medians and ratios. Data is generated deterministically
into ``.bench/`` (git-ignored) and streamed, never held whole. ``BENCH_RUNS`` sets the rounds
(default 3); ``BENCH_SIZES`` a comma-separated subset of ``1MB,100MB,1GB``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import data

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".bench"
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
COLD_RUNS = max(3 * RUNS, 9)
SIZES = {"1MB": 1_000_000, "100MB": 100_000_000, "1GB": 1_000_000_000}
LIMIT_MB = 128
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """``moto_server`` in its own process (one core for it, one for the measured process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def worker_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_", "RESULT_", "INPUT_", "MAX_INPUT"))
    }
    env.update(
        FAKE_AWS, AWS_ENDPOINT_URL_S3=endpoint, PYTHONPATH=f"{ROOT / 'src'}:{ROOT / 'scripts'}"
    )
    env.update(extra)
    return env


def worker(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [*prefix, sys.executable, str(ROOT / "bench" / "worker.py"), args[0], str(out)]
        done = subprocess.run(
            [*cmd, *args[1:]],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if done.returncode != 0:
            return {"error": done.stderr.decode(errors="replace").strip().splitlines()[-1:]}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cold_start(endpoint: str) -> list[str]:
    variants = {
        "`import boto3`": ("boto3", {}),
        "`import handler.app`, tracing off": ("handler.app", {}),
        "`import handler.app`, tracing on": ("handler.app", {"POWERTOOLS_TRACE_DISABLED": "false"}),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(COLD_RUNS):
        for name, (module, extra) in variants.items():
            result = worker(worker_env(endpoint, **extra), "import", module)
            seconds[name].append(result["seconds"])
    base = median(seconds["`import boto3`"])
    rows = [
        f"Import in a fresh process, median of {COLD_RUNS} (alternating):",
        "",
        "| import | median | ratio to `import boto3` | target |",
        "|---|---:|---:|---|",
    ]
    for name, values in seconds.items():
        target = "≤ 1.5×" if "tracing off" in name else ""
        met = (
            " (met)" if target and median(values) / base <= 1.5 else (" (missed)" if target else "")
        )
        rows.append(
            f"| {name} | {median(values) * 1000:.0f} ms | {median(values) / base:.2f}× | "
            f"{target}{met} |"
        )
    return rows


def requests_per_record(endpoint: str) -> list[str]:
    result = worker(worker_env(endpoint), "requests", "requests/market_infos.json")
    if "error" in result:
        return [f"Requests per record: failed ({result['error']})"]
    meaning = {
        "fresh": "a new event (target ≤ 3)",
        "duplicate": "the same event again (target 1)",
        "stale": "its version was overwritten before it ran",
        "superseded": "older than the event already processed",
    }
    rows = ["| record | S3 requests | what | outcome |", "|---|---:|---|---|"]
    for name, what in meaning.items():
        entry = result[name]
        status = entry["status"]
        outcome = status["status"] + (f" ({status['reason']})" if "reason" in status else "")
        rows.append(
            f"| {name} | {entry['requests']} ({' '.join(entry['methods'])}) | {what} | {outcome} |"
        )
    return rows


def warm_latency(endpoint: str, key: str) -> list[str]:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(RUNS):
        result = worker(worker_env(endpoint), "latency", key, "30")
        ours += result["ours"]
        theirs += result["tutorial"]
    rows = [
        f"Warm invocations on a 1 KB object, {len(ours)} each in {RUNS} processes, alternating:",
        "",
        "| function | median | p90 |",
        "|---|---:|---:|",
    ]
    for name, values in (("this function (HEAD, GET, PUT)", ours), ("tutorial (GET, PUT)", theirs)):
        p90 = statistics.quantiles(values, n=10)[-1]
        rows.append(f"| {name} | {median(values) * 1000:.1f} ms | {p90 * 1000:.1f} ms |")
    rows += ["", f"Ratio of medians: {median(ours) / median(theirs):.2f}×."]
    return rows


def throughput(endpoint: str, keys: dict[str, tuple[str, int]]) -> tuple[list[str], float]:
    methods = ("ours", "ijson", "json.loads")
    label = {
        "ours": "this function (whole handler)",
        "ijson": "`ijson.items(body, 'products.item.price')`, Decimal",
        "json.loads": "`json.loads(body.read(), parse_float=Decimal)`",
    }
    rows = [
        f"Median of {RUNS} runs per cell, the methods alternating; time from the request to the "
        "total; peak RSS of the whole process.",
        "",
        "| object | method | MB/s | seconds | peak RSS | vs ijson |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ours_1gb = float("nan")
    for name, (key, size) in keys.items():
        cells: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for _ in range(RUNS):
            for method in methods:
                log(f"throughput {name} {method}")
                cells[method].append(worker(worker_env(endpoint), "throughput", method, key))
        totals = {r["total"] for m in methods for r in cells[m] if "total" in r}
        assert len(totals) <= 1, f"the methods disagree on {name}: {totals}"
        stats: dict[str, tuple[float, float, float]] = {}
        for method in methods:
            good = [r for r in cells[method] if "error" not in r]
            if good:
                seconds = median([r["seconds"] for r in good])
                rss = median([r["peak_rss_mb"] for r in good])
                stats[method] = (size / 1e6 / seconds, seconds, rss)
        speed = {method: entry[0] for method, entry in stats.items()}
        for method in methods:
            if method not in stats:
                rows.append(f"| {name} | {label[method]} | failed: {cells[method][0]} | | | |")
                continue
            mbps, seconds, rss = stats[method]
            versus = f"{mbps / speed['ijson']:.2f}×" if "ijson" in speed else ""
            cell = f"{mbps:.1f} | {seconds:.2f} | {rss:.0f} MB"
            rows.append(f"| {name} | {label[method]} | {cell} | {versus} |")
        if name == "1GB" and "ours" in stats and "ijson" in speed:
            ratio = speed["ours"] / speed["ijson"]
            rss = stats["ours"][2]
            rows += [
                "",
                f"Targets on 1 GB: peak RSS < 100 MB: **{'met' if rss < 100 else 'missed'}** "
                f"({rss:.0f} MB); throughput ≥ 1.5× the ijson baseline: "
                f"**{'met' if ratio >= 1.5 else 'missed'}** ({ratio:.2f}×).",
            ]
    return rows, ours_1gb


def limited_run(endpoint: str, key: str) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return ["prlimit is not installed: run skipped."]
    limit = LIMIT_MB * 1024 * 1024
    result = worker(
        worker_env(endpoint), "throughput", "ours", key, prefix=(prlimit, f"--as={limit}", "--")
    )
    if "error" in result:
        return [f"`prlimit --as={limit}` (address space {LIMIT_MB} MiB): **failed**: {result}"]
    return [
        f"`prlimit --as={limit}` (the whole address space limited to {LIMIT_MB} MiB, stricter than "
        f"Lambda's memory limit): the 1 GB object **succeeded** in {result['seconds']:.1f} s, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB, total {result['total']}."
    ]


def profile(path: Path) -> list[str]:
    """Where the core's time goes on the 100 MB document (py-spy, own time per line)."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return ["py-spy is not installed: profile skipped."]
    rows = []
    for fast in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "profile.txt"
            code = (
                "import sys; from handler import totals; "
                f"totals._total(open(sys.argv[1], 'rb'), fast={fast})"
            )
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            done = subprocess.run(
                [str(spy), "record", "-r", "250", "-f", "raw", "-o", str(raw), "--",
                 sys.executable, "-c", code, str(path)],
                env=env, capture_output=True, check=False,
            )  # fmt: skip
            if done.returncode != 0 or not raw.exists():
                return [f"py-spy failed: {done.stderr.decode(errors='replace')[-200:]}"]
            own: dict[str, int] = {}
            total = 0
            for line in raw.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                leaf = stack.split(";")[-1]
                own[leaf] = own.get(leaf, 0) + int(count)
                total += int(count)
        top = sorted(own.items(), key=lambda item: -item[1])[:6]
        rows.append(f"{'Fast path' if fast else 'Exact path alone'} ({total} samples):")
        rows.append("")
        rows += [f"- {100 * n / total:.0f}% `{leaf}`" for leaf, n in top]
        rows.append("")
    return rows


def write_readme(section: list[str]) -> None:
    text = README.read_text(encoding="utf-8")
    block = "\n".join([BEGIN, *section, END])
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.replace("## Benchmarks\n", f"## Benchmarks\n\n{block}\n", 1)
    README.write_text(text, encoding="utf-8")


def main() -> None:
    started = time.monotonic()
    wanted = os.environ.get("BENCH_SIZES", ",".join(SIZES)).split(",")
    log("generating data in .bench/ (once)")
    paths = {name: data.ensure(DATA_DIR, SIZES[name]) for name in wanted}
    small = data.ensure(DATA_DIR, 1_000)
    with moto_server() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=worker_bucket())
        keys: dict[str, tuple[str, int]] = {}
        for name, path in [("1KB", small), *paths.items()]:
            log(f"uploading {name}")
            key = f"{name}/market_infos.json"
            with path.open("rb") as body:
                client.put_object(Bucket=worker_bucket(), Key=key, Body=body)
            keys[name] = (key, path.stat().st_size)
        log("cold start")
        cold = cold_start(endpoint)
        log("requests per record")
        requests = requests_per_record(endpoint)
        log("warm latency")
        latency = warm_latency(endpoint, keys["1KB"][0])
        log("throughput")
        big = {name: keys[name] for name in wanted}
        table, _ = throughput(endpoint, big)
        limited = ["1 GB not in BENCH_SIZES: run skipped."]
        if "1GB" in keys:
            log(f"1 GB under a {LIMIT_MB} MiB limit")
            limited = limited_run(endpoint, keys["1GB"][0])
    log("profile")
    prof = profile(paths.get("100MB") or next(iter(paths.values())))
    minutes = (time.monotonic() - started) / 60
    section = [
        "",
        f"Measured by `make bench` on {datetime.date.today().isoformat()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
        f"moto S3 server on loopback in its own process; {minutes:.0f} minutes). "
        "Regenerated by each run; edit `bench/`, not this table.",
        "",
        "### Cold start",
        "",
        *cold,
        "",
        "### S3 requests per record",
        "",
        *requests,
        "",
        "### Warm latency",
        "",
        *latency,
        "",
        "### Throughput and memory",
        "",
        *table,
        "",
        f"### 1 GB in {LIMIT_MB} MiB",
        "",
        *limited,
        "",
        "### Profile of the core (100 MB document from a file)",
        "",
        *prof,
        "What bounds the speed: the fast path decodes batches of whole products with msgspec (C),",
        "building one `Decimal` per price from its text, then adds them one by one in an exact",
        "decimal context; that decode and the `Decimal` work are most of its time, the rest is",
        "byte scans in C (`count`, `rfind`) that choose and vet each batch. The exact path (ijson",
        "events and a Python state machine) runs only before and after the array and on batches",
        "the fast path refuses; alone it reaches about a tenth of the fast path's speed, because it",  # noqa: E501
        "creates and dispatches one Python tuple per JSON token. On small objects the fixed cost of",  # noqa: E501
        "an invocation dominates (HEAD, GET and PUT against S3, Powertools logs and metrics), hence",  # noqa: E501
        "the 1 MB and 1 KB rows. The machine is shared: figures vary by tens of percent between",
        "runs, ratios within one run less so.",
        "",
    ]
    write_readme(section)
    print("\n".join(section))


def worker_bucket() -> str:
    from worker import BUCKET

    return BUCKET


if __name__ == "__main__":
    main()
