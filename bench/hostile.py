"""``make bench-hostile`` (and the end of ``make bench``): the hostile-documents table of
``docs/benchmarks.md``, between ``<!-- hostile:begin -->`` and ``<!-- hostile:end -->``.

Each document is generated into ``.bench/hostile/`` (streamed, never held whole) and read by the
core (``handler.totals.total_prices``, the default settings, from a file) in a fresh process,
which reports its seconds and its peak RSS (VmHWM). A plain valid document of 100 MB, measured
in the same rounds, is the baseline of the ratios. Medians of ``BENCH_HOSTILE_RUNS`` runs
(default 3); ``BENCH_HOSTILE_1GB=1`` adds a 1 GiB valid document of nested-price products.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from docblock import rewrite_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
DATA = ROOT / ".bench" / "hostile"
BEGIN, END = "<!-- hostile:begin -->", "<!-- hostile:end -->"
MB = 1_000_000
RUNS = int(os.environ.get("BENCH_HOSTILE_RUNS", "3"))

READ = """
import json, sys, time
from handler.totals import InvalidDocument, total_prices
started = time.perf_counter()
try:
    with open(sys.argv[1], "rb") as f:
        total = total_prices(f)
    answer = f"ok ({total.product_count} products)"
except InvalidDocument as error:
    answer = f"{error.code}: {error.message}"
seconds = time.perf_counter() - started
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"answer": answer, "seconds": seconds, "peak_mb": peak}))
"""


def _products(nested: bool) -> Iterator[bytes]:
    n = 0
    while True:
        cents = (n * 7919) % 100_000
        price = f"{cents // 100}.{cents % 100:02d}"
        offer = ', "offer": {"price": 1.50, "until": "2027-01-01"}' if nested else ""
        yield f'{{"name": "product-{n}", "price": {price}{offer}}}'.encode()
        n += 1


def _valid(path: Path, size: int, *, nested: bool) -> None:
    with path.open("wb") as out:
        out.write(b'{"market": "bench", "products": [')
        written, batch, first = 0, [], True
        for item in _products(nested):
            batch.append(item)
            written += len(item) + 2
            if len(batch) == 10_000 or written >= size:
                out.write((b"" if first else b", ") + b", ".join(batch))
                first, batch = False, []
            if written >= size:
                break
        out.write(b"]}")


def _repeated(path: Path, head: bytes, unit: bytes, size: int, tail: bytes) -> None:
    chunk = unit * (MB // len(unit))
    with path.open("wb") as out:
        out.write(head)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(tail)


def cases() -> list[tuple[str, Path]]:
    """(case, file) for every row, generated once."""
    DATA.mkdir(parents=True, exist_ok=True)
    nested = '`{"price": ...}`'
    specs: list[tuple[str, str, Callable[[Path], None]]] = [
        ("baseline: valid, plain products", "plain-100MB",
         partial(_valid, size=100 * MB, nested=False)),
        (f"valid, products with a nested {nested} offer", "nested-100MB",
         partial(_valid, size=100 * MB, nested=True)),
        ("a price with 45 million decimal places", "decimals-45MB",
         partial(_repeated, head=b'{"products": [{"price": 0.', unit=b"5", size=45 * MB,
                 tail=b"}]}")),
        ("a 100 MB string", "string-100MB",
         partial(_repeated, head=b'{"products": [], "s": "', unit=b"x", size=100 * MB,
                 tail=b'"}')),
        ("a 300 MB string", "string-300MB",
         partial(_repeated, head=b'{"products": [], "s": "', unit=b"x", size=300 * MB,
                 tail=b'"}')),
        ("an ignored 100 MB integer", "integer-100MB",
         partial(_repeated, head=b'{"products": [], "n": 1', unit=b"0", size=100 * MB,
                 tail=b"}")),
        ("100 MB of nesting", "nesting-100MB",
         partial(_repeated, head=b'{"products": [], "n": ', unit=b"[", size=100 * MB, tail=b"")),
        ("100 MB of small ignored values (`1,`)", "small-100MB",
         partial(_repeated, head=b'{"products": [], "n": [', unit=b"1,", size=100 * MB,
                 tail=b"1]}")),
    ]  # fmt: skip
    if os.environ.get("BENCH_HOSTILE_1GB") == "1":
        specs.append(
            (f"valid 1 GiB, products with a nested {nested} offer", "nested-1GiB",
             partial(_valid, size=1024**3, nested=True))
        )  # fmt: skip
    rows = []
    for case, name, write in specs:
        path = DATA / f"{name}.json"
        if not path.exists():
            write(path)
        rows.append((case, path))
    return rows


def measure(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", READ, str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def table() -> list[str]:
    started = time.monotonic()
    rows = cases()
    runs: dict[str, list[dict[str, object]]] = {case: [] for case, _ in rows}
    for _ in range(RUNS):  # the cases alternate within each round
        for case, path in rows:
            runs[case].append(measure(path))
    base = statistics.median(float(str(r["seconds"])) for r in runs[rows[0][0]])
    base_size = rows[0][1].stat().st_size
    lines = [
        f"Measured by `make bench-hostile` on {datetime.date.today().isoformat()} "
        f"({os.cpu_count()} cores shared, Python {platform.python_version()}, "
        f"{platform.machine()}; {(time.monotonic() - started) / 60:.0f} minutes). The core alone "
        "reads each document from a file in a fresh process with the default settings "
        "(`MAX_VALUE_BYTES` 1 MiB); medians of "
        f"{RUNS} runs. Regenerated by each run; edit `bench/hostile.py`, not this section.",
        "",
        "| case | size | seconds | s per MB vs baseline | peak RSS | outcome |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for case, path in rows:
        size = path.stat().st_size
        seconds = statistics.median(float(str(r["seconds"])) for r in runs[case])
        peak = max(float(str(r["peak_mb"])) for r in runs[case])
        per_mb = (seconds / size) / (base / base_size)
        answer = str(runs[case][0]["answer"])
        lines.append(
            f"| {case} | {size / MB:,.0f} MB | {seconds:.2f} | {per_mb:.2f}x | "
            f"{peak:.0f} MB | {answer} |"
        )
    lines += [
        "",
        "Peak RSS is the largest of the runs. A refused value costs the bytes before it and at "
        "most `MAX_VALUE_BYTES` of it: the refusal comes when the value's length passes the "
        "limit, whatever its full length. Products with a nested object holding a `price` key are "
        "batched by the fast path with a second decode of each batch (before it, the exact path "
        "read them: 1 GiB took 58 s on this machine); values outside `products` are read token "
        "by token by the exact path: linear, but at the slope of the s-per-MB column.",
    ]
    return lines


def write_doc(section: list[str]) -> None:
    rewrite_block(
        DOC,
        (BEGIN, END),
        ["", "## Hostile documents", "", *section, ""],
        if_missing=lambda text, block: text.replace(
            "<!-- runtime:begin -->", f"{block}\n\n<!-- runtime:begin -->", 1
        ),
    )


def main() -> None:
    section = table()
    write_doc(section)
    print("\n".join(section))


if __name__ == "__main__":
    main()
