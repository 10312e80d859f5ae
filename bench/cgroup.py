"""Lambda's limits for benchmark processes: CPU in proportion to the memory size, one full vCPU
at 1769 MB (AWS's Lambda documentation, "Memory and computing power"), and the memory size itself
as a hard limit on the memory the process uses (not on its address space).

A cgroup of our own (``market-totals-bench-<pid>-...``): cgroup v2's ``cpu.max``/``memory.max``
where the unified hierarchy offers the controller, else cgroup v1's ``cpu.cfs_quota_us`` or
``memory.limit_in_bytes`` (hosts that mount the controllers on v1). Only processes the benchmark
starts are moved in, each by itself before it runs (``move_here``), and the cgroup is removed on
the way out, also on error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT_V2 = Path("/sys/fs/cgroup")
ROOT_V1 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
FULL_VCPU_MB = 1769


def cores_for(memory_mb: int) -> float:
    """Lambda's CPU share at ``memory_mb``: 1769 MB is one vCPU (3008 MB: 1.7)."""
    return memory_mb / FULL_VCPU_MB


def _root(controller: str) -> tuple[Path, str] | None:
    """Where to make a cgroup with ``controller`` (``cpu``, ``memory``), and which version it
    is; None where neither is possible (no permission, no such controller)."""
    subtree = ROOT_V2 / "cgroup.subtree_control"
    if subtree.exists() and controller in subtree.read_text().split():
        return ROOT_V2, "v2"
    v1 = ROOT_V1 / controller
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1, "v1"
    return None


def available(controller: str = "cpu") -> str | None:
    """``"v2"`` or ``"v1"`` where ``controller`` can limit a cgroup here, else None."""
    found = _root(controller)
    return found[1] if found else None


@contextlib.contextmanager
def _cgroup(controller: str, name: str, limits: dict[str, dict[str, str]]) -> Iterator[Path]:
    found = _root(controller)
    if found is None:
        raise RuntimeError(f"no cgroup with a {controller} controller is writable here")
    root, version = found
    path = root / f"market-totals-bench-{os.getpid()}-{name}"
    path.mkdir()
    try:
        for file, value in limits[version].items():
            (path / file).write_text(value)
        yield path
    finally:
        path.rmdir()  # the processes it held have exited (the caller waits for them)


def _mover(path: Path) -> Callable[[], None]:
    procs = path / "cgroup.procs"

    def move_here() -> None:
        procs.write_text(str(os.getpid()))

    return move_here


@contextlib.contextmanager
def cpu_quota(cores: float) -> Iterator[Callable[[], None]]:
    """A cgroup limited to ``cores`` of CPU time; yields a ``preexec_fn`` for ``subprocess``
    that moves the starting child (and only it) into the cgroup."""
    quota = max(1000, round(cores * PERIOD_US))
    limits = {
        "v2": {"cpu.max": f"{quota} {PERIOD_US}"},
        "v1": {"cpu.cfs_period_us": str(PERIOD_US), "cpu.cfs_quota_us": str(quota)},
    }
    with _cgroup("cpu", f"cpu{quota}", limits) as path:
        yield _mover(path)


@contextlib.contextmanager
def memory_limit(limit_bytes: int) -> Iterator[Callable[[], None]]:
    """A cgroup whose processes may use at most ``limit_bytes`` of memory (beyond it the kernel
    kills them, as Lambda does); yields a ``preexec_fn`` as ``cpu_quota`` does."""
    limits = {
        "v2": {"memory.max": str(limit_bytes), "memory.swap.max": "0"},
        "v1": {"memory.limit_in_bytes": str(limit_bytes)},
    }
    with _cgroup("memory", f"mem{limit_bytes}", limits) as path:
        yield _mover(path)
