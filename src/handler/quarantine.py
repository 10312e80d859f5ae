"""Malformed work, kept where an operator finds it: a copy sent to the queue
``MALFORMED_QUEUE_URL`` names (the deployment's dead-letter queue), with why.

Why not let the queue's redrive policy move it: a message reported as a batch item failure
comes back ``maxReceiveCount`` times (five), each time read and refused the same way, before
SQS moves it; and a direct invocation is retried twice by Lambda. Malformed work never gets
better, so its copy goes to the DLQ at once, and the original is answered. Where no queue is
named (tests, ``make run``), or the copy cannot be sent, the caller falls back on the retries:
nothing vanishes either way (``handler.app``).
"""

from __future__ import annotations

from typing import Any, Final

import boto3

from handler.storage import CLIENT_CONFIG

#: SQS message attributes of the copy: why it was refused, and where it came from.
PROBLEM: Final = "market-totals-problem"
ORIGIN: Final = "market-totals-origin"
#: SQS limits a message attribute's value with the message; a problem is a short sentence.
MAX_PROBLEM_CHARS: Final = 1024


def keep(queue_url: str, body: str, *, problem: str, origin: str) -> None:
    """Send ``body`` (the malformed message's own body, or the malformed event) to
    ``queue_url``, with ``problem`` and ``origin`` (the message id, or which record) as message
    attributes. Raises whatever SQS answers: the caller then keeps the work by retrying it."""
    attributes = {
        PROBLEM: {"DataType": "String", "StringValue": problem[:MAX_PROBLEM_CHARS]},
        ORIGIN: {"DataType": "String", "StringValue": origin},
    }
    sqs: Any = boto3.client("sqs", config=CLIENT_CONFIG)  # no SQS type stubs are installed
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
