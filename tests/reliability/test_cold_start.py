"""What the cold start imports (``handler.app``'s module docstring; ``docs/benchmarks.md``,
"Cold start: what is imported when"): what only one event shape, or only a large object, needs
is imported when that arrives, not with the handler. Pinned by the modules a fresh interpreter
holds, never by time (the benchmark measures time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import EVENTS

SRC = Path(__file__).resolve().parents[2] / "src"

#: Modules the handler's import must leave out, each for the one thing that needs it.
ONLY_WHEN_NEEDED = {
    "asyncio": "Powertools' batch utilities (SQS)",
    "aws_lambda_powertools.utilities.batch": "SQS events",
    "aws_lambda_powertools.utilities.data_classes": "reading an event's records",
    "aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event": "nothing of ours",
    "handler.ranged": "objects of PARALLEL_READ_BYTES or more",
    "opentelemetry": "an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) with the packages there",
}

#: Imports ``handler.app`` in a fresh interpreter, then hands it each event of ``sys.argv[1]``
#: (a JSON list; events that need no S3 request), printing the modules held after each step.
PROBE = """
import json, sys
def watched():
    return sorted(m for m in sys.modules if m.split(".")[0] in {"asyncio", "opentelemetry"}
                  or m.startswith(("aws_lambda_powertools.utilities", "handler.")))
import handler.app
steps = [watched()]
context = type("Context", (), {"function_name": "f", "memory_limit_in_mb": 128,
                               "invoked_function_arn": "arn", "aws_request_id": "r",
                               "get_remaining_time_in_millis": lambda self: 900_000})()
for event in json.loads(sys.argv[1]):
    handler.app.lambda_handler(event, context)
    steps.append(watched())
print(json.dumps(steps))
"""


def modules_after(*events: dict[str, object]) -> list[set[str]]:
    """The watched modules after the import, then after each event, in a fresh interpreter
    with nothing of this test process's (tracing off, as the template's default)."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(SRC),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(events)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [set(step) for step in json.loads(out.stdout.splitlines()[-1])]


def test_importing_the_handler_leaves_out_what_one_shape_or_size_needs() -> None:
    (imported,) = modules_after()
    assert "handler.app" in imported
    assert imported & set(ONLY_WHEN_NEEDED) == set()


def test_an_sqs_event_imports_the_batch_utilities_when_it_arrives() -> None:
    test_event = json.loads((EVENTS / "test-event.json").read_text())
    sqs = json.loads((EVENTS / "sqs-s3.json").read_text())
    # Its one message whose body is an s3:TestEvent: answered without any S3 request.
    sqs["Records"] = [record for record in sqs["Records"] if "s3:TestEvent" in record["body"]]
    assert len(sqs["Records"]) == 1

    imported, after_test_event, after_sqs = modules_after(test_event, sqs)

    assert after_test_event == imported  # a test event needs nothing more
    assert {"asyncio", "aws_lambda_powertools.utilities.batch"} <= after_sqs
    assert "handler.ranged" not in after_sqs
