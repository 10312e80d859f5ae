"""The bill: the handler's duration and cost per million invocations at each Lambda memory size,
with the CPU Lambda gives that size (``cgroup.cpu_quota``), through the throttling proxy.

Lambda bills duration (rounded up to the millisecond) times memory in GB-seconds, plus a charge
per request. Each cell is a fresh process under the quota: one warm-up invocation on a 1 KB
object, then the timed ones (warm, as most invocations are). A cell that runs past its time
budget is stopped and reported as more than the budget.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cgroup
from runner import log, median, worker, worker_env

MEMORY_SIZES_MB = (128, 256, 512, 1024, 1769, 3008)
#: AWS Lambda's price for arm64 in us-east-1, first tier (the first 7.5 billion GB-seconds of a
#: month), and per request; stated for PRICE_DATE.
PRICE_PER_GB_SECOND = 0.0000133334
PRICE_PER_REQUEST = 0.20 / 1_000_000
PRICE_DATE = "2026-11-22"
#: Timed invocations per cell, by object: medians of several where they are quick.
CALLS = {"1KB": 5, "1MB": 5, "100MB": 2, "1GB": 1}
#: The most seconds one cell's timed invocations may take (``BENCH_CELL_SECONDS``).
BUDGET = float(os.environ.get("BENCH_CELL_SECONDS", "45"))
#: CPU-seconds a worker spends before its timed invocations (start, imports, warm-up): its time
#: limit grows by this much, scaled by its CPU share.
SETUP_CPU_SECONDS = 1.5


@dataclass(frozen=True)
class Cell:
    """One memory size and object: median seconds (None where over budget or failed)."""

    memory_mb: int
    name: str
    seconds: float | None
    peak_rss_mb: float | None = None
    failed: str | None = None

    @property
    def cost_per_million(self) -> float | None:
        if self.seconds is None:
            return None
        billed = math.ceil(self.seconds * 1000) / 1000
        gb_seconds = billed * self.memory_mb / 1024
        return 1_000_000 * (gb_seconds * PRICE_PER_GB_SECOND + PRICE_PER_REQUEST)


def measure(endpoint: str, keys: dict[str, str]) -> list[Cell]:
    """Every memory size for every object in ``keys`` (name -> key)."""
    cells = []
    for memory_mb in MEMORY_SIZES_MB:
        cores = cgroup.cores_for(memory_mb)
        for name, key in keys.items():
            log(f"bill: {memory_mb} MB ({cores:.3f} vCPU), {name}")
            calls = CALLS.get(name, 1)
            limit = BUDGET * calls + SETUP_CPU_SECONDS / cores
            with cgroup.cpu_quota(cores) as move_here:
                result = worker(
                    worker_env(endpoint),
                    "invoke",
                    key,
                    str(calls),
                    keys["1KB"],
                    preexec=move_here,
                    timeout=limit,
                )
            if result.get("timeout"):
                cells.append(Cell(memory_mb, name, None))
            elif "error" in result:
                cells.append(Cell(memory_mb, name, None, failed=str(result["error"])))
            else:
                seconds = median(result["seconds"])
                over = seconds > BUDGET
                cells.append(
                    Cell(memory_mb, name, None if over else seconds, result["peak_rss_mb"])
                )
    return cells


def _duration(cell: Cell) -> str:
    if cell.failed:
        return "failed"
    if cell.seconds is None:
        return f"> {BUDGET:.0f} s"
    return f"{cell.seconds * 1000:.0f} ms" if cell.seconds < 1 else f"{cell.seconds:.1f} s"


def _cost(cell: Cell) -> str:
    cost = cell.cost_per_million
    if cost is None:
        low = Cell(cell.memory_mb, cell.name, BUDGET).cost_per_million
        return "failed" if cell.failed else f"> ${low:,.0f}"
    return f"${cost:,.2f}" if cost < 100 else f"${cost:,.0f}"


def tables(cells: list[Cell]) -> list[str]:
    """The duration and cost tables (rows: objects; columns: memory sizes)."""
    names = list(dict.fromkeys(cell.name for cell in cells))
    at = {(cell.name, cell.memory_mb): cell for cell in cells}
    head = "| object | " + " | ".join(f"{mb} MB" for mb in MEMORY_SIZES_MB) + " |"
    rule = "|---|" + "---:|" * len(MEMORY_SIZES_MB)
    cpu = " | ".join(f"{cgroup.cores_for(mb):.2f}" for mb in MEMORY_SIZES_MB)
    rows = ["Duration of one warm invocation (median):", "", head, rule, f"| vCPU | {cpu} |"]
    for name in names:
        rows.append(
            f"| {name} | " + " | ".join(_duration(at[name, mb]) for mb in MEMORY_SIZES_MB) + " |"
        )
    rows += [
        "",
        "Cost per million invocations (duration × memory × "
        f"${PRICE_PER_GB_SECOND:.10f}/GB-s, + ${PRICE_PER_REQUEST * 1e6:.2f} per million "
        "requests):",
        "",
        head,
        rule,
    ]
    for name in names:
        rows.append(
            f"| {name} | " + " | ".join(_cost(at[name, mb]) for mb in MEMORY_SIZES_MB) + " |"
        )
    peaks = [cell.peak_rss_mb for cell in cells if cell.peak_rss_mb is not None]
    if peaks:
        rows += ["", f"Peak RSS of any cell: {max(peaks):.0f} MB."]
    failed = [f"{c.name} at {c.memory_mb} MB: {c.failed}" for c in cells if c.failed]
    if failed:
        rows += ["", "Failed: " + "; ".join(failed) + "."]
    return rows


def cheapest(cells: list[Cell]) -> list[str]:
    """For each object, the memory size with the lowest cost, and the fastest."""
    lines = []
    for name in dict.fromkeys(cell.name for cell in cells):
        done = [c for c in cells if c.name == name and c.seconds is not None]
        if not done:
            continue
        low = min(done, key=lambda c: c.cost_per_million or math.inf)
        fast = min(done, key=lambda c: c.seconds or math.inf)
        lines.append(
            f"- {name}: cheapest at {low.memory_mb} MB ({_cost(low)} per million, "
            f"{_duration(low)}); fastest at {fast.memory_mb} MB ({_duration(fast)}, "
            f"{_cost(fast)})."
        )
    return lines


def plot(cells: list[Cell], path: Path) -> None:
    """Cost per million and duration against memory size, one line per object."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    figure, (cost_axes, time_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(cell.name for cell in cells):
        mine = [c for c in cells if c.name == name and c.seconds is not None]
        sizes = [c.memory_mb for c in mine]
        cost_axes.plot(sizes, [c.cost_per_million for c in mine], marker="o", label=name)
        time_axes.plot(sizes, [c.seconds for c in mine], marker="o", label=name)
    for axes, label in ((cost_axes, "USD per million invocations"), (time_axes, "seconds")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(MEMORY_SIZES_MB, [str(mb) for mb in MEMORY_SIZES_MB])
        axes.xaxis.set_minor_locator(NullLocator())
        axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_minor_locator(NullLocator())
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.set_xlabel("Lambda memory size (MB); CPU = memory / 1769 MB")
        axes.set_ylabel(label)
        axes.grid(True, which="major", alpha=0.3)
    cost_axes.set_title(f"Cost (arm64, us-east-1, price of {PRICE_DATE})")
    time_axes.set_title("Duration of one warm invocation")
    time_axes.legend(title="object")
    figure.suptitle(f"Cells over {BUDGET:.0f} s are left out (see the table)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
