"""What the deployed suite's tests do through one stack: upload, wait for results, read the
function's log lines, deliver an event again through the stack's Trigger."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from tests.end_to_end.deployed.deployed_stacks import Deployment
from tests.infra.deployed import stack

#: A cold container (docker run, the runtime's start, the imports) on a busy 2-core machine.
RESULT_TIMEOUT = 120.0
#: Long enough for a retry of an event LocalStack would retry (async invocations: ~1 min).
QUIET_SECONDS = 5.0
RECORD_PROCESSED = "record processed"
RECORD_FAILED = "record failed; it will be retried"


def document(*prices: str) -> bytes:
    """A market_infos.json with these prices (decimal strings, written as JSON numbers)."""
    return (
        '{"products": [' + ", ".join(f'{{"price": {price}}}' for price in prices) + "]}"
    ).encode()


@dataclass
class Triggered:
    """The stack under one Trigger, with what the tests do through it."""

    deployment: Deployment
    trigger: str

    def __post_init__(self) -> None:
        self.s3 = self.deployment.client("s3")
        self.logs = self.deployment.client("logs")

    def prefix(self) -> str:
        """A key prefix no other test uses."""
        return f"{self.trigger.lower()}-{uuid.uuid4().hex[:10]}/"

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        response: dict[str, Any] = self.s3.put_object(
            Bucket=self.deployment.bucket, Key=key, Body=body
        )
        return response

    def result(self, key: str) -> dict[str, Any] | None:
        return stack.read_json(self.s3, self.deployment.bucket, key)

    def wait_result(self, key: str, accept: Any = None) -> dict[str, Any]:
        """The result at ``key`` once it exists (and ``accept(result)`` holds, where given)."""

        def probe() -> dict[str, Any] | None:
            found = self.result(key)
            return found if found is not None and (accept is None or accept(found)) else None

        return stack.wait_for(probe, timeout=RESULT_TIMEOUT, what=f"{key} ({self.trigger})")

    def lines(self) -> list[str]:
        return stack.log_lines(self.logs, stack.log_group_of(self.deployment.function_name))

    def records(self, key: str, message: str = RECORD_PROCESSED) -> list[dict[str, Any]]:
        """The function's structured log lines with ``message`` about input ``key``."""
        return [line for line in stack.structured(self.lines(), message) if line.get("key") == key]

    def wait_records(self, key: str, count: int) -> list[dict[str, Any]]:
        """The ``record processed`` lines of ``key`` once there are at least ``count``."""

        def probe() -> list[dict[str, Any]] | None:
            found = self.records(key)
            return found if len(found) >= count else None

        return stack.wait_for(probe, timeout=RESULT_TIMEOUT, what=f"{count} log line(s) of {key}")

    def redeliver(self, source: dict[str, Any]) -> None:
        """Deliver the event of ``source`` (a result's ``source``) again, through the trigger's
        own channel, as S3 does when it delivers an event twice."""
        if self.trigger == "S3Notification":
            # What the bucket's notification does: an asynchronous invoke.
            self.deployment.client("lambda").invoke(
                FunctionName=self.deployment.function_name,
                InvocationType="Event",
                Payload=json.dumps(stack.s3_notification(source)).encode(),
            )
        elif self.trigger == "EventBridge":
            response = self.deployment.client("events").put_events(
                Entries=[
                    {
                        "Source": "aws.s3",
                        "DetailType": "Object Created",
                        "Resources": [f"arn:aws:s3:::{source['bucket']}"],
                        "Detail": json.dumps(stack.eventbridge_detail(source)),
                    }
                ]
            )
            assert response["FailedEntryCount"] == 0, response
        else:
            self.deployment.client("sqs").send_message(
                QueueUrl=self.deployment.outputs["InputQueueUrl"],
                MessageBody=json.dumps(stack.s3_notification(source)),
            )
