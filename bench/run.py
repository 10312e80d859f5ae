"""``make bench``: the section of ``docs/benchmarks.md`` between its markers, measured against a
moto S3 server on loopback, directly and through a proxy that behaves like S3 seen from Lambda.

Every measurement runs in a fresh process (``worker.py``); compared commands alternate within
each round, and the tables give medians and ratios of one run. Data is generated
deterministically into ``.bench/`` (git-ignored) and streamed, never held whole. ``BENCH_RUNS``
sets the rounds (default 3); ``BENCH_SIZES`` a comma-separated subset of ``1MB,100MB,1GB``;
``BENCH_CELL_SECONDS`` the time budget of one cell of the bill (default 45).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bill
import boto3
import cgroup
import data
import hostile
from docblock import rewrite_block
from runner import ONE_STREAM, ROOT, log, median, worker, worker_env
from servers import FIRST_BYTE_SECONDS, STREAM_BYTES_PER_SECOND, moto_server, throttled

DATA_DIR = ROOT / ".bench"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "bench-cost.png"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
COLD_RUNS = max(3 * RUNS, 9)
SIZES = {"1MB": 1_000_000, "100MB": 100_000_000, "1GB": 1_000_000_000}
LIMIT_MB = 128
BUCKET = "bench"
#: The networks every throughput and latency is measured over.
LOOPBACK, S3_LIKE = "loopback", "S3-like"


#: The cold start's target: the handler's imports against the tutorial's.
COLD_TARGET = 1.20
#: The warm target: a fresh record whose result the container does not know, through the
#: S3-like network, against the tutorial's median.
WARM_TARGET = 1.10
TUTORIAL_IMPORTS = "boto3,json"


def clean_src() -> Path:
    """A copy of ``src`` without bytecode, in a new temporary directory (``rmtree`` its
    parent): the handler's modules as ``sam build`` ships them."""
    clean = Path(tempfile.mkdtemp(prefix="bench-src-")) / "src"
    shutil.copytree(ROOT / "src", clean, ignore=shutil.ignore_patterns("__pycache__"))
    return clean


#: The artifact ``sam build`` makes (the Makefile's build-MarketTotalsFunction): the lock's
#: packages and ours, with unchecked-hash bytecode, as Lambda's /var/task holds them.
ARTIFACT = Path(os.environ.get("BENCH_ARTIFACT", ROOT / ".aws-sam/build/MarketTotalsFunction"))


def cold_start(endpoint: str) -> list[str]:
    """The imports of a cold start, in fresh processes, alternating, in three settings:

    - bytecode cached: every module, the tutorial's and ours, reads its bytecode from a cache
      filled by a first, untimed run: what is imported, compared on equal terms (the target);
    - our modules compiled: the handler's own modules are compiled as they are imported, from a
      clean copy of ``src`` without bytecode, and nothing written (Lambda's code directory is
      read-only), while boto3 and the other packages read their installed bytecode;
    - the built artifact (where ``sam build`` has made it): everything imported from the
      artifact itself, nothing written, the tutorial's boto3 from the same directory, as the
      runtime's boto3 has its bytecode.
    """
    cache = tempfile.mkdtemp(prefix="bench-pycache-")
    clean = clean_src()
    cached = {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": ""}
    compiled = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(clean)}
    built = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ARTIFACT)}
    tutorial = "tutorial: `import boto3, json`"
    tutorial_compiled = "tutorial, our modules compiled (none: boto3's bytecode is installed)"
    tutorial_built = "tutorial, from the built artifact"
    variants = {
        tutorial: (TUTORIAL_IMPORTS, cached, tutorial),
        "`import handler.app`": ("handler.app", cached, tutorial),
        tutorial_compiled: (TUTORIAL_IMPORTS, compiled, tutorial_compiled),
        "`import handler.app`, our modules compiled": ("handler.app", compiled, tutorial_compiled),
    }
    if (ARTIFACT / "handler" / "app.py").exists():
        variants |= {
            tutorial_built: (TUTORIAL_IMPORTS, built, tutorial_built),
            "`import handler.app` from the built artifact (unchecked-hash bytecode)": (
                "handler.app",
                built,
                tutorial_built,
            ),
        }
    worker(worker_env(endpoint, **cached), "import", f"{TUTORIAL_IMPORTS},handler.app")
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(COLD_RUNS):
        for name, (modules, extra, _base) in variants.items():
            result = worker(worker_env(endpoint, **extra), "import", modules)
            seconds[name].append(result["seconds"])
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(clean.parent, ignore_errors=True)
    rows = [
        f"Imports in a fresh process, median of {COLD_RUNS} (alternating); the tutorial's are "
        "`import boto3, json`:",
        "",
        "| imports | median | ratio to the tutorial's | target |",
        "|---|---:|---:|---|",
    ]
    for name, values in seconds.items():
        ratio = median(values) / median(seconds[variants[name][2]])
        target = ""
        if name == "`import handler.app`":
            met = "met" if ratio <= COLD_TARGET else "missed"
            target = f"≤ {COLD_TARGET:.2f}× (**{met}**)"
        rows.append(f"| {name} | {median(values) * 1000:.0f} ms | {ratio:.2f}× | {target} |")
    if tutorial_built not in variants:
        rows += ["", f"No built artifact in {ARTIFACT} (`sam build` makes it): its rows skipped."]
    return rows


def first_invocation(endpoint: str) -> list[str]:
    """Imports and the first invocation, in one fresh process each: what a lazy import moves
    out of the cold start is paid here, so the sum is what a cold container really costs. Each
    run totals new bytes (a fresh record, no result yet); loopback S3."""
    key = "cold/market_infos.json"
    runs: dict[str, list[dict[str, Any]]] = {
        "tutorial, S3 notification": [],
        "this function, S3 notification": [],
        "this function, SQS message (S3 -> SQS)": [],
    }
    clean = clean_src()
    compiled = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(clean)}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(COLD_RUNS):
            for name, results in runs.items():
                events = worker(worker_env(endpoint, **compiled), "first-events", key, str(run))
                shape = "sqs" if "SQS" in name else "s3"
                path = Path(tmp) / "event.json"
                path.write_text(json.dumps(events[shape]))
                function = "tutorial" if name.startswith("tutorial") else "handler"
                result = worker(worker_env(endpoint, **compiled), "first", function, str(path))
                if "error" in result:
                    return [f"First invocation: failed ({result['error']})"]
                answer = result["answer"]
                assert answer.get("batchItemFailures", []) == [], answer
                assert answer.get("records", [{"status": "ok"}])[0]["status"] == "ok", answer
                results.append(result)
    shutil.rmtree(clean.parent, ignore_errors=True)
    base = median([r["seconds"] for r in runs["tutorial, S3 notification"]])
    rows = [
        f"A cold start in full: the imports, then the first invocation (a client made, the object "
        f"read, the result written; loopback), in one fresh process, median of {COLD_RUNS} "
        "(alternating), our modules compiled as they are imported. The tutorial has no SQS "
        "variant: its S3 row is the yardstick for both.",
        "",
        "| function, event | imports | first invocation | sum | sum, ratio to the tutorial's |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, results in runs.items():
        parts = [median([r[part] for r in results]) for part in ("import", "invocation", "seconds")]
        rows.append(
            f"| {name} | {parts[0] * 1000:.0f} ms | {parts[1] * 1000:.0f} ms | "
            f"{parts[2] * 1000:.0f} ms | {parts[2] / base:.2f}× |"
        )
    return rows


#: The container column of the request table: whether the container knew the result.
CONTAINERS = {"known": "knows the result", "unknown": "does not", "any": "either"}


#: What each row of the request table is, and its request budget where it has one (``None``:
#: none set); every count comes from a run (``worker.count_requests``).
RECORDS: dict[str, tuple[str, int | None]] = {
    "fresh": ("no result: a new key, or (known) one uploaded again after a withdrawal", 4),
    "duplicate": ("the same event again (budget 1 where the result is known)", 2),
    "stale": ("its version was overwritten before it ran: the GET finds another", None),
    "superseded": ("older by sequencer than the event processed; the GET confirms it", 2),
    "stale, still current": ("older by sequencer, but its bytes are current again", None),
    "update": ("a new version of a key that has a result", 4),
    "unreadable": ("a new version stored as GLACIER: the `unreadable` result", 4),
    "reconcile, re-uploaded": ("the look after the PUT finds new bytes: totalled again", None),
    "reconcile, deleted": ("the look after the PUT finds the key gone: withdrawn", None),
    "late deletion": ("older than the upload processed; the key confirms", 2),
    "noncurrent removed": ("a noncurrent version deleted: nothing changes", 2),
    "promotion": ("the current version deleted: the previous one is totalled", 5),
    "withdrawal": ("a delete marker: result removed (If-Match), key seen again", 4),
    "refused bucket": ("a bucket `SOURCE_BUCKETS` does not name: answered unread", 0),
}


def requests_per_record(endpoint: str) -> list[str]:
    result = worker(worker_env(endpoint), "requests", "requests")
    if "error" in result:
        return [f"Requests per record: failed ({result['error']})"]
    rows = [
        "S3 requests per record, counted by a hook on the function's S3 clients in a real run "
        "against moto (the set-up of each record uncounted), in a container that knows the "
        "result (it wrote or read it before) and in one that does not (a cold or new container: "
        "the GET goes out beside the HEAD, and is closed unread where the HEAD says the record "
        "is a duplicate or stale); a deletion asks S3 for the result and the key whatever the "
        "container knows. Methods in the order sent: a HEAD and a GET sent at once may come in "
        "either order. Every write of a result is followed by a HEAD of the input key (the look "
        "after the write), counted here.",
        "",
        "| record | container | S3 requests | budget | what | outcome |",
        "|---|---|---:|---|---|---|",
    ]
    for row, entry in result.items():
        kind, container = row.split("/")
        what, budget = RECORDS[kind]
        if kind == "duplicate" and container == "known":
            budget = 1
        status = entry["status"]
        outcome = status["status"] + (f" ({status['reason']})" if "reason" in status else "")
        verdict = ""
        if budget is not None:
            verdict = f"≤ {budget} ({'met' if entry['requests'] <= budget else '**missed**'})"
        who = CONTAINERS[container]
        if kind == "fresh" and container == "known":
            who = "knows there is none (it withdrew it)"
        rows.append(
            f"| {kind} | {who} | "
            f"{entry['requests']} ({' '.join(entry['methods']) or 'none'}) | {verdict} | {what} | "
            f"{outcome} |"
        )
    rows += [
        "",
        "A large object (from `PARALLEL_READ_BYTES`, 64 MiB) adds its parts to the fresh record's "
        "GET: one ranged GET per 8 MiB (`tests/functional/test_ranged.py`).",
    ]
    return rows


def warm_latency(endpoints: dict[str, str], key: str) -> list[str]:
    """Part of the fixed cost of an invocation: round trips. Over loopback a round trip is
    mostly CPU; through the S3-like proxy it is mostly waiting. Each function's requests, as
    its last timed call sent them, are in its label."""
    label = {
        "ours": "this function, S3 notification, result known to the container",
        "unknown": "this function, S3 notification, result not known",
        "batch": "this function, Batch Operations task",
        "tutorial": "tutorial",
    }
    rows = [
        f"Warm invocations on a 1 KB object, 30 of each in each of {RUNS} processes, alternating; "
        "before each of ours the object is uploaded again with other bytes (untimed), so that "
        "each is a fresh record replacing an existing result. The requests are those a hook on "
        "the S3 clients saw (a HEAD and a GET sent at once, in either order, cost one round "
        "trip):",
        "",
        "| network | function | S3 requests | median | p90 | ratio to the tutorial |",
        "|---|---|---|---:|---:|---:|",
    ]
    ratios: dict[tuple[str, str], float] = {}
    for network, endpoint in endpoints.items():
        timings: dict[str, list[float]] = {name: [] for name in label}
        methods: dict[str, list[str]] = {}
        for _ in range(RUNS):
            log(f"warm latency, {network}")
            result = worker(worker_env(endpoint), "latency", key, "30")
            if "error" in result:
                return [f"Warm latency: failed ({result['error']})"]
            for name in label:
                timings[name] += result["seconds"][name]
            methods = result["methods"]
        base = median(timings["tutorial"])
        for name, values in timings.items():
            p90 = statistics.quantiles(values, n=10)[-1]
            ratios[network, name] = median(values) / base
            rows.append(
                f"| {network} | {label[name]} | {len(methods[name])} "
                f"({' '.join(methods[name])}) | {median(values) * 1000:.1f} ms | "
                f"{p90 * 1000:.1f} ms | {median(values) / base:.2f}× |"
            )
    for network in endpoints:
        ratio = ratios[network, "unknown"]
        met = "met" if ratio <= WARM_TARGET else "missed"
        verdict = f" (target ≤ {WARM_TARGET:.2f}×: **{met}**)" if network == S3_LIKE else ""
        rows += [
            "",
            f"{network}: an S3 notification whose result the container does not know (a cold or "
            f"new container, a key's first event) takes **{ratio:.2f}×** the tutorial's median"
            f"{verdict}; one whose result it knows {ratios[network, 'ours']:.2f}×; a Batch "
            f"Operations task {ratios[network, 'batch']:.2f}×.",
        ]
    return rows


METHODS: dict[str, tuple[str, dict[str, str], str]] = {
    "default": ("ours", {}, "this function, default settings (parallel parts from 64 MiB)"),
    "one stream": ("ours", ONE_STREAM, "this function, one GET stream"),
    "ijson": ("ijson", {}, "`ijson.items(body, 'products.item.price')`, Decimal"),
    "json.loads": ("json.loads", {}, "`json.loads(body.read(), parse_float=Decimal)`"),
}


def throughput(
    endpoints: dict[str, str], keys: dict[str, tuple[str, int]]
) -> tuple[list[str], dict[tuple[str, str, str], tuple[float, float, float]]]:
    """Every method over every network, alternating within each round; json.loads only over
    loopback (it reads the whole body before parsing: the network changes nothing of note)."""
    cells = [
        (network, method)
        for method in METHODS
        for network in endpoints
        if not (method == "json.loads" and network != LOOPBACK)
    ]
    rows = [
        f"Median of {RUNS} runs per cell, alternating; time from the request to the total; peak "
        "RSS of the whole process. S3-like: through a proxy on loopback that caps each "
        f"connection at {STREAM_BYTES_PER_SECOND / 1e6:.0f} MB/s and holds back each response's "
        f"first byte by {FIRST_BYTE_SECONDS * 1000:.0f} ms (S3 gives one GET stream about "
        "50-100 MB/s in Lambda).",
        "",
        "| object | network | method | MB/s | seconds | peak RSS | vs ijson, same network |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    stats: dict[tuple[str, str, str], tuple[float, float, float]] = {}
    for name, (key, size) in keys.items():
        results: dict[tuple[str, str], list[dict[str, Any]]] = {cell: [] for cell in cells}
        for _ in range(RUNS):
            for network, method in cells:
                log(f"throughput {name} {network} {method}")
                kind, extra, _ = METHODS[method]
                env = worker_env(endpoints[network], **extra)
                results[network, method].append(worker(env, "throughput", kind, key))
        totals = {r["total"] for runs in results.values() for r in runs if "total" in r}
        assert len(totals) <= 1, f"the methods disagree on {name}: {totals}"
        for (network, method), runs in results.items():
            good = [r for r in runs if "error" not in r]
            if good:
                seconds = median([r["seconds"] for r in good])
                rss = median([r["peak_rss_mb"] for r in good])
                stats[name, network, method] = (size / 1e6 / seconds, seconds, rss)
        for network, method in cells:
            label = METHODS[method][2]
            if (name, network, method) not in stats:
                failure = results[network, method][0].get("error")
                rows.append(f"| {name} | {network} | {label} | failed: {failure} | | | |")
                continue
            mbps, seconds, rss = stats[name, network, method]
            ijson = stats.get((name, network, "ijson"))
            versus = f"{mbps / ijson[0]:.2f}×" if ijson else ""
            rows.append(
                f"| {name} | {network} | {label} | {mbps:.1f} | {seconds:.2f} | {rss:.0f} MB | "
                f"{versus} |"
            )
    return rows + targets(stats), stats


def targets(stats: dict[tuple[str, str, str], tuple[float, float, float]]) -> list[str]:
    """The targets on 1 GB, met or missed."""
    need = [("1GB", n, m) for n in (LOOPBACK, S3_LIKE) for m in ("default", "ijson")]
    if any(cell not in stats for cell in need):
        return []

    def speed(network: str, method: str) -> float:
        return stats["1GB", network, method][0]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    rss = stats["1GB", LOOPBACK, "default"][2]
    one = stats.get(("1GB", LOOPBACK, "one stream"))
    fast = speed(LOOPBACK, "default") / speed(LOOPBACK, "ijson")
    kept = speed(S3_LIKE, "default") / speed(LOOPBACK, "default")
    beat = speed(S3_LIKE, "default") / speed(S3_LIKE, "ijson")
    lines = [
        "",
        "Targets on 1 GB:",
        "",
        f"- peak RSS at the default settings < 128 MB: {verdict(rss < 128)} ({rss:.0f} MB)"
        + (f"; with one stream < 100 MB: {verdict(one[2] < 100)} ({one[2]:.0f} MB)" if one else ""),
        f"- loopback, ≥ 1.5× the ijson baseline: {verdict(fast >= 1.5)} ({fast:.2f}×)",
        f"- S3-like, ≥ 0.8× this function's own loopback throughput: {verdict(kept >= 0.8)} "
        f"({kept:.2f}×)",
        f"- S3-like, ≥ 3× the single-stream ijson baseline: {verdict(beat >= 3)} ({beat:.2f}×)",
    ]
    one_s3 = stats.get(("1GB", S3_LIKE, "one stream"))
    if one_s3:
        lines.append(
            f"- (one GET stream, S3-like: {one_s3[0]:.0f} MB/s, "
            f"{speed(S3_LIKE, 'default') / one_s3[0]:.2f}× slower than the parallel read)"
        )
    return lines


def limited_runs(endpoints: dict[str, str], key: str) -> list[str]:
    """1 GB under Lambda's smallest memory size: as a cap on memory (a cgroup, which is what
    Lambda enforces) and as a cap on the address space (prlimit, stricter)."""
    limit = LIMIT_MB * 1024 * 1024
    rows = []
    if cgroup.available("memory"):
        with cgroup.memory_limit(limit) as move_here:
            result = worker(
                worker_env(endpoints[S3_LIKE]),
                "throughput",
                "ours",
                key,
                preexec=move_here,
                timeout=300,
            )
        rows.append(
            f"- Memory limited to {LIMIT_MB} MiB (a cgroup, as Lambda limits a function), default "
            "settings, S3-like network: "
            + (
                f"**failed**: {result['error']}"
                if "error" in result
                else f"the 1 GB object **succeeded** in {result['seconds']:.1f} s, peak RSS "
                f"{result['peak_rss_mb']:.0f} MB, total {result['total']}."
            )
        )
    else:
        rows.append("- No writable memory cgroup here: the memory-limited run was skipped.")
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return [*rows, "- prlimit is not installed: the address-space run was skipped."]
    for label, extra in (("one GET stream", ONE_STREAM), ("default settings", {})):
        result = worker(
            worker_env(endpoints[LOOPBACK], **extra),
            "throughput",
            "ours",
            key,
            prefix=(prlimit, f"--as={limit}", "--"),
            timeout=60,
        )
        rows.append(
            f"- `prlimit --as={limit}` (the whole address space limited to {LIMIT_MB} MiB, "
            f"stricter than Lambda's limit), {label}: "
            + (
                f"**failed**: {result['error']}"
                if "error" in result
                else f"the 1 GB object **succeeded** in {result['seconds']:.1f} s, peak RSS "
                f"{result['peak_rss_mb']:.0f} MB, total {result['total']}."
            )
        )
    rows += [
        "",
        "Under an address-space cap the parallel read's threads cannot reserve their stacks and "
        "malloc arenas (virtual memory, never touched): the read fails with a MemoryError, or "
        "s3transfer waits for a thread that never starts (the run is stopped after 60 s). Lambda "
        "caps memory in use, as the cgroup does, not address space.",
    ]
    return rows


def bill_section(endpoint: str, keys: dict[str, str]) -> list[str]:
    if cgroup.available("cpu") is None:
        return ["No writable cgroup with a cpu controller here: the bill was not measured."]
    cells = bill.measure(endpoint, keys)
    bill.plot(cells, PLOT)
    return [
        f"Each memory size's CPU share (memory / 1769 MB of a core; cgroup "
        f"{cgroup.available('cpu')} CPU quota), S3-like network, median of "
        f"{', '.join(f'{n} {name}' for name, n in bill.CALLS.items())} warm invocations per "
        f"cell in a fresh process; cells past {bill.BUDGET:.0f} s stopped. Price: AWS Lambda "
        f"arm64, us-east-1, first tier, ${bill.PRICE_PER_GB_SECOND:.10f} per GB-second and "
        f"${bill.PRICE_PER_REQUEST * 1e6:.2f} per million requests, as stated on "
        f"{bill.PRICE_DATE}. S3's own request charges are not included.",
        "",
        *bill.tables(cells),
        "",
        *bill.cheapest(cells),
        "",
        f"![Cost and duration by memory size]({PLOT.name})",
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


def write_doc(section: list[str], markers: tuple[str, str] = (BEGIN, END)) -> None:
    """The lines between ``markers`` in ``docs/benchmarks.md`` replaced by ``section``; the
    whole section's markers are added at the end where missing, a part's must be there (the
    whole section holds them)."""

    def if_missing(text: str, block: str) -> str:
        if markers != (BEGIN, END):
            raise SystemExit(f"{DOC} has no {markers[0]}: run `make bench` once")
        return text.rstrip("\n") + f"\n\n{block}\n"

    rewrite_block(DOC, markers, section, if_missing=if_missing)


#: The parts of the section ``BENCH_ONLY`` may run alone, each between markers of its own
#: inside the section (the cold start only prints).
PARTS = {
    "requests": ("<!-- bench-requests:begin -->", "<!-- bench-requests:end -->"),
    "warm": ("<!-- bench-warm:begin -->", "<!-- bench-warm:end -->"),
}
ONLY = ("cold-start", *PARTS)


def part(name: str, lines: list[str]) -> list[str]:
    begin, end = PARTS[name]
    return [begin, *lines, end]


def machine() -> str:
    """The machine a run measured on, as the section's first line and each part's say it."""
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
        "moto S3 server on loopback in its own process"
    )


def run_only(parts: list[str]) -> None:
    """``BENCH_ONLY``: the cold start printed, the request table and the warm latency written
    into their parts of the section, with a line that says when and how they were measured
    (``BENCH_NOTE`` appended to it: what else the machine was doing, say)."""
    unknown = sorted(set(parts) - set(ONLY))
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown {', '.join(unknown)}; known: {', '.join(ONLY)}")
    note = os.environ.get("BENCH_NOTE", "").strip()
    command = os.environ.get("BENCH_COMMAND", f"BENCH_ONLY={','.join(parts)} make bench")
    if "BENCH_RUNS" in os.environ:
        command = f"BENCH_RUNS={RUNS} {command}"
    stamp = (
        f"Measured alone by `{command}` on {datetime.date.today().isoformat()} ({machine()})"
        + (f". {note}" if note else "")
        + ("" if note.endswith(".") else ".")
    )
    with moto_server() as endpoint, throttled(endpoint) as s3_like:
        client = setup_client(endpoint)
        if "cold-start" in parts:
            print("\n".join(cold_start(endpoint)))
        if "requests" in parts:
            log("requests per record")
            lines = ["", stamp, "", *requests_per_record(endpoint), ""]
            write_doc(lines, PARTS["requests"])
            print("\n".join(lines))
        if "warm" in parts:
            key = "1KB/market_infos.json"
            client.put_object(
                Bucket=BUCKET, Key=key, Body=data.ensure(DATA_DIR, 1_000).read_bytes()
            )
            log("warm latency")
            lines = ["", stamp, "", *warm_latency({LOOPBACK: endpoint, S3_LIKE: s3_like}, key), ""]
            write_doc(lines, PARTS["warm"])
            print("\n".join(lines))


def setup_client(endpoint: str) -> Any:
    """A client of the moto server, its bucket made."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def main() -> None:
    if only := os.environ.get("BENCH_ONLY", "").strip():
        run_only([name.strip() for name in only.split(",") if name.strip()])
        return
    started = time.monotonic()
    wanted = os.environ.get("BENCH_SIZES", ",".join(SIZES)).split(",")
    log("generating data in .bench/ (once)")
    paths = {name: data.ensure(DATA_DIR, SIZES[name]) for name in wanted}
    small = data.ensure(DATA_DIR, 1_000)
    with moto_server() as endpoint, throttled(endpoint) as s3_like:
        endpoints = {LOOPBACK: endpoint, S3_LIKE: s3_like}
        client = setup_client(endpoint)
        keys: dict[str, tuple[str, int]] = {}
        for name, path in [("1KB", small), *paths.items()]:
            log(f"uploading {name}")
            key = f"{name}/market_infos.json"
            with path.open("rb") as body:
                client.put_object(Bucket=BUCKET, Key=key, Body=body)
            keys[name] = (key, path.stat().st_size)
        log("cold start")
        cold = cold_start(endpoint)
        log("first invocation")
        first = first_invocation(endpoint)
        log("requests per record")
        requests = requests_per_record(endpoint)
        log("warm latency")
        latency = warm_latency(endpoints, keys["1KB"][0])
        log("throughput")
        table, _ = throughput(endpoints, {name: keys[name] for name in wanted})
        limited = ["1 GB not in BENCH_SIZES: runs skipped."]
        if "1GB" in keys:
            log(f"1 GB in {LIMIT_MB} MiB")
            limited = limited_runs(endpoints, keys["1GB"][0])
        log("the bill")
        bill_rows = bill_section(s3_like, {name: key for name, (key, _) in keys.items()})
    log("profile")
    prof = profile(paths.get("100MB") or next(iter(paths.values())))
    minutes = (time.monotonic() - started) / 60
    section = [
        "",
        f"Measured by `make bench` on {datetime.date.today().isoformat()} "
        f"({machine()}; {minutes:.0f} minutes). "
        "Regenerated by each run; edit `bench/`, not this section.",
        "",
        "## Cold start",
        "",
        *cold,
        "",
        *first,
        "",
        "## S3 requests per record",
        "",
        *part("requests", ["", *requests, ""]),
        "",
        "## Warm latency",
        "",
        *part("warm", ["", *latency, ""]),
        "",
        "## Throughput and memory",
        "",
        *table,
        "",
        f"## 1 GB in {LIMIT_MB} MiB",
        "",
        *limited,
        "",
        "## The bill: duration and cost by memory size",
        "",
        *bill_rows,
        "",
        "## Profile of the core (100 MB document from a file)",
        "",
        *prof,
        "What bounds the speed: the fast path decodes batches of whole products with msgspec (C),",
        "keeping each price's text; where every price of a batch is a plain decimal (digits and a",
        "point) their exact sum comes from floats created in C and rounded to the last decimal",
        "place, which a bound proves exact; other batches get one `Decimal` per price. The decode",
        "is most of its time, the rest is byte scans in C that choose and vet each batch (`rfind`",
        'for a cut at a likely product boundary, a count of `"price"` keys; braces are counted',
        "only once a guessed cut has been refused) and one copy of the batch into the array",
        "msgspec reads. The exact path (ijson",
        "events and a Python state machine) runs only before and after the array and on batches",
        "the fast path refuses; alone it reaches about a tenth of the fast path's speed, because it",  # noqa: E501
        "creates and dispatches one Python tuple per JSON token. On small objects the fixed cost of",  # noqa: E501
        "an invocation dominates (HEAD, GET, PUT and the look after it against S3, Powertools",
        "logs and metrics), hence",
        "the 1 MB and 1 KB rows. The machine is shared: figures vary by tens of percent between",
        "runs, ratios within one run less so.",
        "",
    ]
    write_doc(section)
    print("\n".join(section))
    log("hostile documents")
    hostile.main()


if __name__ == "__main__":
    main()
