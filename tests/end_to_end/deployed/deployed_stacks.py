"""The deployed suite's stacks: one per Trigger value, created by ``sam deploy`` on first use
(the fixtures are in conftest.py; this module has a name of its own so tests can import it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.infra.deployed import stack as stack_module
from tests.infra.deployed.chain import Chain

#: Every Trigger value of template.yaml, in the order the stack is switched through them.
TRIGGERS = ("S3Notification", "EventBridge", "Queue")
#: Parameters of every deployment: x86_64 (the stand-in image and LocalStack's init are amd64),
#: and for Trigger=Queue batches of up to 10, so that a partial batch response can be seen.
BASE_PARAMETERS = {"Architectures": "x86_64", "LogLevel": "INFO"}
TRIGGER_PARAMETERS: dict[str, dict[str, str]] = {
    "Queue": {"QueueBatchSize": "10", "QueueMaximumConcurrency": "2"},
}


@dataclass
class Deployment:
    """One deployed stack: its name, Trigger and outputs, and clients for checks."""

    chain: Chain
    name: str
    trigger: str
    outputs: dict[str, str] = field(default_factory=dict)

    def deploy(self, **overrides: str) -> None:
        """``sam deploy``: create the stack, or update it with other parameters."""
        parameters = {
            **BASE_PARAMETERS,
            "Trigger": self.trigger,
            **TRIGGER_PARAMETERS.get(self.trigger, {}),
            **overrides,
        }
        self.outputs = stack_module.deploy(self.chain, self.name, parameters)

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    @property
    def function_name(self) -> str:
        return self.outputs["FunctionName"]

    def client(self, service: str) -> Any:
        return stack_module.client(self.chain, service)


class Deployments:
    """The session's stacks, one per Trigger, each created on first use."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.run = uuid.uuid4().hex[:6]
        self.stacks: dict[str, Deployment] = {}

    def __getitem__(self, trigger: str) -> Deployment:
        if trigger not in self.stacks:
            # Lowercase, at most 35 characters (the bucket is <stack>-<account>-<region>).
            deployment = Deployment(self.chain, f"mt-{trigger.lower()}-{self.run}", trigger)
            try:
                deployment.deploy()
            except stack_module.DeployError as error:
                raise pytest.fail.Exception(str(error), pytrace=False) from None
            self.stacks[trigger] = deployment
        return self.stacks[trigger]
