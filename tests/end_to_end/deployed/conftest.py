"""Fixtures of the deployed suite (``make deploy-test``; not part of ``make unit``).

Why this suite: every other test calls the handler itself. Here the real template is deployed
with ``sam deploy`` onto LocalStack, whose own CloudFormation creates the stack and whose own
Lambda service runs the packaged function in a Docker container; uploads go in through
LocalStack's S3 API and the results are read back from its S3. What it proves that nothing else
does: CloudFormation accepts the transformed template, each trigger (the bucket's notification,
the EventBridge rule, the queue's event source mapping) delivers work to the function, and the
artifact imports and runs in a Lambda runtime.

One chain serves the session (tests/infra/deployed/chain.py: registry, image, LocalStack with
Lambda): it takes about half a minute to start. One stack per Trigger value, created when its
tests start (test_deploy_triggers.py) and removed with ``sam delete`` at the end
(test_deploy_zdelete.py). Switching a stack's Trigger with a stack update is what LocalStack's
CloudFormation cannot do yet (test_deploy_zdelete.py pins that); other stack updates it applies.
A missing piece fails the session with one line saying what and how to get it; nothing is
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.end_to_end.deployed.deployed_stacks import Deployments
from tests.infra.deployed import chain as chain_module
from tests.infra.deployed.chain import Chain, Missing
from tests.infra.localstack_runtime import LocalStackError


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """Registry, runtime image, LocalStack with Lambda: up for the session, then stopped.
    ``LAMBDA_INIT`` (from `make deploy-test LAMBDA_INIT=...`) names LocalStack's Lambda init
    binary on a machine without internet; without it LocalStack's installer downloads it."""
    init = os.environ.get("LAMBDA_INIT") or None
    try:
        with chain_module.running(
            tmp_path_factory.mktemp("chain"), init=Path(init).resolve() if init else None
        ) as running:
            yield running
    except (Missing, LocalStackError) as error:
        # A failure, never a skip: a skipped deployment would pass unnoticed.
        raise pytest.fail.Exception(str(error), pytrace=False) from None


@pytest.fixture(scope="session")
def deployments(chain: Chain) -> Deployments:
    return Deployments(chain)
