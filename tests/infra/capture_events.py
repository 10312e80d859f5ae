"""Record what LocalStack's notifications deliver, as JSON files in
tests/end_to_end/localstack/captured/.

Why: these are events we did not write. The handler's event parsing is read against them, and
tests/end_to_end/localstack/test_localstack_events.py checks that the live shapes still have
their structure (so a LocalStack upgrade that changes a shape is noticed). Run it again after
such an upgrade:

    .venv/bin/python -m tests.infra.capture_events

It starts its own LocalStack (``.venv-localstack``, created by ``make localstack-test``), uploads
one object with an awkward key to a versioned bucket per route, and writes:

- ``s3-to-sqs-message.json``: an SQS message (as ``ReceiveMessage`` returns it) whose body is
  the S3 notification;
- ``s3-test-event-message.json``: the ``s3:TestEvent`` message S3 sends when the queue is set;
- ``sns-to-sqs-message.json``: S3 -> SNS -> SQS: the body is SNS's envelope;
- ``eventbridge-event.json``: the EventBridge event, as a rule target receives it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from tests.infra.localstack_runtime import ROOT, running
from tests.infra.localstack_wiring import Clients, Notification, Route, create_bucket, receive, wire

CAPTURED = ROOT / "tests" / "localstack" / "captured"
KEY = "market a/m%rkte+1/märkte/market_infos.json"
BODY = b'{"products": [{"name": "a", "price": 1.25}, {"name": "b", "price": 2.5}]}'


def capture(clients: Clients, route: Route) -> list[Notification]:
    """Everything one upload to a new versioned bucket wired by ``route`` delivers."""
    bucket = f"capture-{route}-{uuid.uuid4().hex[:8]}"
    create_bucket(clients, bucket, versioned=True)
    queue = wire(clients, route, bucket)
    clients.s3.put_object(Bucket=bucket, Key=KEY, Body=BODY)
    return receive(clients, route, queue, 1, timeout=30)


def write(name: str, document: Any) -> None:
    """Indented and with non-ASCII as is, so the files read well in a review."""
    path = CAPTURED / name
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    CAPTURED.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="localstack-") as root, running(Path(root)) as stack:
        clients = Clients.for_endpoint(stack.endpoint)
        files: dict[str, Any] = {}
        for notification in capture(clients, "sqs"):
            name = "s3-test-event-message" if notification.is_test_event else "s3-to-sqs-message"
            files[f"{name}.json"] = notification.message
        for notification in capture(clients, "sns"):
            if not notification.is_test_event:
                files["sns-to-sqs-message.json"] = notification.message
        for notification in capture(clients, "eventbridge"):
            files["eventbridge-event.json"] = notification.event
    expected = {
        "s3-to-sqs-message.json",
        "s3-test-event-message.json",
        "sns-to-sqs-message.json",
        "eventbridge-event.json",
    }
    if set(files) != expected:
        print(f"missing: {sorted(expected - set(files))}", file=sys.stderr)
        return 1
    for name, document in sorted(files.items()):
        write(name, document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
