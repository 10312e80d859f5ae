"""Memory does not grow with the object: a >= 200 MB object is processed by the handler in a
fresh process whose peak RSS stays under a bound far below the object's size. A bound, not a
timing: speed is measured by ``make bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from localrun.invoke import FAKE_AWS_ENV, put_event

ROOT = Path(__file__).resolve().parents[2]
OBJECT_BYTES = 210 * 1024 * 1024
#: Lambda's smallest useful memory size; the parser must fit in it whatever the object's size.
RSS_BOUND_MB = 128

SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serve until the test closes our stdin
"""

INVOKE = """
import json, sys
from handler.app import lambda_handler
from localrun.invoke import LocalContext
summary = lambda_handler(json.load(sys.stdin), LocalContext())
# VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts from its parent's peak (pytest's).
status = open("/proc/self/status").read()
peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"summary": summary, "peak_mb": peak_mb}))
"""


@pytest.fixture
def moto_server_process(aws_credentials: None) -> Iterator[str]:
    """A moto server in its own process, so the object it stores is not counted against the
    handler's memory."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    port = int(proc.stdout.readline())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def write_document(path: Path, size: int) -> tuple[Decimal, int]:
    """Write a valid document of at least ``size`` bytes; return its exact total and count."""
    cents = 0
    count = 0
    with path.open("w", encoding="ascii") as out:
        out.write('{"market": "memory-test", "products": [')
        written = 0
        batch: list[str] = []
        while written < size:
            price = (count * 7919) % 100_000
            cents += price
            item = f'{{"name": "product-{count}", "price": {price // 100}.{price % 100:02d}}}'
            batch.append(item)
            written += len(item) + 2
            count += 1
            if len(batch) == 10_000:
                out.write((", " if count > len(batch) else "") + ", ".join(batch))
                batch.clear()
        if batch:
            out.write((", " if count > len(batch) else "") + ", ".join(batch))
        out.write("]}")
    return Decimal(cents) / 100, count


def test_large_object_is_streamed_with_bounded_memory(
    moto_server_process: str, tmp_path: Path
) -> None:
    document = tmp_path / "market_infos.json"
    total, count = write_document(document, OBJECT_BYTES)
    size = document.stat().st_size
    assert size >= 200 * 1024 * 1024

    client = boto3.client("s3", endpoint_url=moto_server_process)
    client.create_bucket(Bucket="market-totals-demo")
    with document.open("rb") as body:
        put = client.put_object(Bucket="market-totals-demo", Key="big/market_infos.json", Body=body)
    event = put_event(
        "market-totals-demo",
        "big/market_infos.json",
        etag=put["ETag"].strip('"'),
        size=size,
        sequencer="01",
    )

    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "src"),
        "AWS_ENDPOINT_URL_S3": moto_server_process,
        "POWERTOOLS_METRICS_DISABLED": "true",
        **FAKE_AWS_ENV,
    }
    run = subprocess.run(
        [sys.executable, "-c", INVOKE],
        input=json.dumps(event),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    outcome = json.loads(run.stdout.strip().splitlines()[-1])

    assert outcome["summary"]["records"][0]["status"] == "ok"
    result = json.loads(
        client.get_object(Bucket="market-totals-demo", Key="big/total_price.json")["Body"].read(),
        parse_float=Decimal,
    )
    assert (result["total"], result["product_count"]) == (total, count)
    print(f"peak RSS {outcome['peak_mb']:.0f} MB for {size // 2**20} MiB")
    assert outcome["peak_mb"] < RSS_BOUND_MB, f"peak RSS {outcome['peak_mb']:.0f} MB"
    assert outcome["peak_mb"] < size / 1024 / 1024 / 2
