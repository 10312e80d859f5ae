"""The integration suite talks to a deployed stack with the caller's real AWS credentials
(profile, SSO or environment): the root conftest's autouse fixture, which replaces them with fake
ones for every other test, is overridden here by one that leaves the environment alone."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def aws_credentials() -> None:
    """Keep the caller's AWS environment (overrides ``tests/conftest.py``'s fake credentials)."""
