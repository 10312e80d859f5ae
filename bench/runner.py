"""Running one measurement (``worker.py``) in a fresh process: its environment (fake
credentials, the S3 endpoint, the function's settings), and its outcome as a dict (with
``error`` where it failed, ``timeout`` where it ran past its limit and was killed)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
#: The function's settings for a one-stream read (the parallel read off).
ONE_STREAM = {"PARALLEL_READ_CONCURRENCY": "1"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def worker_env(endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of a measured process: nothing of the function's or AWS's from the
    caller's shell, fake credentials, the endpoint, and ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_", "RESULT_", "INPUT_", "MAX_INPUT", "PARALLEL_"))
    }
    env.update(FAKE_AWS, AWS_ENDPOINT_URL_S3=endpoint, PYTHONPATH=str(ROOT / "src"))
    env.update(extra)
    return env


def worker(
    env: dict[str, str],
    *args: str,
    prefix: tuple[str, ...] = (),
    preexec: Callable[[], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``worker.py KIND OUT ARGS...`` and return what it wrote to OUT."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [*prefix, sys.executable, str(ROOT / "bench" / "worker.py"), args[0], str(out)]
        try:
            done = subprocess.run(
                [*cmd, *args[1:]],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
                preexec_fn=preexec,  # only moves the child into a cgroup (cgroup.py)
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:  # run() has killed and reaped it
            return {"error": f"timed out after {timeout:.0f} s", "timeout": True}
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            return {"error": lines[-1:] or [f"exit status {done.returncode}"]}
        result: dict[str, Any] = json.loads(out.read_text())
        return result
