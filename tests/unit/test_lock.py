"""The locks and the artifact check (checks/check_artifact.py): a requirement and its lock must
agree, every locked distribution carries hashes, and an artifact holding anything the lock does
not, at another version, or a file no RECORD lists, is refused."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from checks.check_artifact import lock_pins, main, normalise, problems

ROOT = Path(__file__).resolve().parents[2]
#: Each .in and the lock `make lock` writes from it.
LOCKS = sorted(ROOT.glob("requirements*.in"))


def direct_pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a .in file and of the .in files it includes."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            pins |= direct_pins(path.parent / line.split()[1])
    return pins | lock_pins(path.read_text())


@pytest.mark.parametrize("source", LOCKS, ids=lambda p: p.name)
def test_every_pin_of_a_requirements_file_is_its_locks(source: Path) -> None:
    locked = lock_pins(source.with_suffix(".txt").read_text())
    for name, version in direct_pins(source).items():
        assert locked.get(name) == version, f"{name}=={version} of {source.name}"


@pytest.mark.parametrize("source", LOCKS, ids=lambda p: p.name)
def test_every_locked_distribution_has_hashes(source: Path) -> None:
    text = source.with_suffix(".txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert entries
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_development_locks_carry_the_functions_versions() -> None:
    runtime = lock_pins((ROOT / "requirements.txt").read_text())
    for lock in ("requirements-run.txt", "requirements-dev.txt", "requirements-otel.txt"):
        pins = lock_pins((ROOT / lock).read_text())
        assert {name: pins[name] for name in runtime} == runtime, lock


def record_line(build: Path, relative: str) -> str:
    digest = hashlib.sha256((build / relative).read_bytes()).digest()
    return f"{relative},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},1\n"


def install(build: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A distribution as an installer leaves it: its files, METADATA and a RECORD of both."""
    info = build / f"{normalise(name).replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for relative, text in files.items():
        (build / relative).parent.mkdir(parents=True, exist_ok=True)
        (build / relative).write_text(text)
    record = "".join(record_line(build, f) for f in [*files, f"{info.name}/METADATA"])
    (info / "RECORD").write_text(record + f"{info.name}/RECORD,,\n")
    return info


@pytest.fixture
def build(tmp_path: Path) -> Path:
    install(tmp_path, "Typing_Extensions", "4.16.0", {"typing_extensions.py": "x = 1\n"})
    (tmp_path / "handler").mkdir()
    (tmp_path / "handler" / "app.py").write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "typing_extensions.cpython-313.pyc").write_bytes(b"")
    return tmp_path


PINS = {"typing-extensions": "4.16.0"}


def test_an_artifact_of_the_locks_distributions_passes(build: Path) -> None:
    assert problems(build, PINS) == []


def test_a_distribution_the_lock_does_not_hold_is_refused(build: Path) -> None:
    install(build, "wrapt", "2.5.2", {"wrapt/__init__.py": ""})
    assert problems(build, PINS) == ["wrapt 2.5.2 is packaged but not in the lock"]


def test_another_version_than_the_locks_is_refused(build: Path) -> None:
    assert problems(build, {"typing-extensions": "4.15.0"}) == [
        "typing-extensions is packaged at 4.16.0, the lock pins 4.15.0"
    ]


def test_a_locked_distribution_missing_from_the_artifact_is_refused(build: Path) -> None:
    assert problems(build, PINS | {"six": "1.17.0"}) == [
        "six==1.17.0 is in the lock but not packaged"
    ]


def test_a_file_changed_after_install_or_in_no_record_is_refused(build: Path) -> None:
    (build / "typing_extensions.py").write_text("x = 2\n")
    (build / "sitecustomize.py").write_text("")
    assert problems(build, PINS) == [
        "typing_extensions.py differs from its RECORD hash",
        "sitecustomize.py is in no RECORD",
    ]


def test_the_command_fails_on_a_problem_and_names_it(
    build: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path_factory.mktemp("lock") / "requirements.txt"
    lock.write_text("typing-extensions==4.16.0 \\\n    --hash=sha256:00\n")
    assert main(["--lock", str(lock), "--build-dir", str(build)]) == 0
    lock.write_text("typing-extensions==4.15.0 \\\n    --hash=sha256:00\n")
    assert main(["--lock", str(lock), "--build-dir", str(build)]) == 1
    assert "the lock pins 4.15.0" in capsys.readouterr().err
