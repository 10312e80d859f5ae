"""A missing piece of the chain stops ``make deploy-test`` with one line saying what is missing
and how to get it (tests/infra/deployed/chain.py). These run first in the deployed suite (they need
no chain) and leave nothing running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.infra.deployed import chain


def filesystem_env(root: Path) -> dict[str, str]:
    """LocalStack's environment for its installer: host mode, state under ``root``."""
    return {**os.environ, "OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(root)}


def assert_one_line(error: pytest.ExceptionInfo[chain.Missing], *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_no_docker_command_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(chain.Missing) as error:
        chain.docker_bridge_address()
    assert_one_line(error, "Docker", chain.ENSURE_DOCKER)


def test_no_registry_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(chain.Missing) as error:
        chain.start_registry(tmp_path / "registry")
    assert_one_line(error, "docker-registry", "apt-get install docker-registry")


def test_a_lambda_init_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(chain.Missing) as error:
        chain.provide_init(filesystem_env(tmp_path), tmp_path / "no-such-init")
    assert_one_line(error, "LAMBDA_INIT=", "no-such-init")


def test_the_init_goes_where_localstacks_installer_looks(tmp_path: Path) -> None:
    source = tmp_path / "init"
    source.write_bytes(b"\x7fELF stand-in")
    placed = chain.provide_init(filesystem_env(tmp_path / "root"), source)
    # The installer's own layout: <var_libs>/lambda-runtime/<version>/<arch>/var/rapid/init.
    relative = placed.relative_to(tmp_path / "root" / "var" / "lib" / "localstack" / "lib")
    assert relative.parts[0] == "lambda-runtime"
    assert relative.parts[1].startswith("v")
    assert relative.parts[2:] == ("x86_64", "var", "rapid", "init")
    assert placed.read_bytes() == source.read_bytes()
    assert os.access(placed, os.X_OK)
