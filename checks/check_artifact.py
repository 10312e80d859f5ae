"""Check that the built artifact holds the lock's distributions and nothing else.

Why: ``sam build``'s own Python builder re-downloads native wheels for arm64 without checking
their hashes, and a lock only protects what is installed from it. The Makefile's
``build-MarketTotalsFunction`` installs with ``uv pip install --require-hashes``; this check
then reads the artifact itself: every ``*.dist-info`` names a distribution the lock pins, at the
lock's version, every pinned distribution is there, and every file outside the function's own
``handler/`` (and the bytecode compiled from it) is listed in a ``RECORD`` with its sha256.

    python -m checks.check_artifact --lock requirements.txt \
        --build-dir .aws-sam/build/MarketTotalsFunction
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import re
import sys
from email.parser import HeaderParser
from pathlib import Path
from typing import Final

_PIN: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==([^\s;\\]+)")
#: The function's own package, copied from src/ rather than installed from a wheel.
OWN: Final = "handler"


def normalise(name: str) -> str:
    """PEP 503's normal form: the lock and METADATA may spell a name differently."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(text: str) -> dict[str, str]:
    """Name -> version of every ``name==version`` line of a requirements file."""
    return {
        normalise(m.group(1)): m.group(2)
        for line in text.splitlines()
        if (m := _PIN.match(line.strip()))
    }


def _digest(path: Path) -> str:
    raw = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _recorded(path: Path, build_dir: Path) -> bool:
    """Bytecode is compiled after the install: it traces to its recorded source."""
    if path.suffix == ".pyc" and path.parent.name == "__pycache__":
        return True
    return path.relative_to(build_dir).parts[0] == OWN


def problems(build_dir: Path, pins: dict[str, str]) -> list[str]:
    """Every way the artifact disagrees with the lock, one line each (none: it agrees)."""
    found: list[str] = []
    recorded: set[Path] = set()
    packaged: set[str] = set()
    for info in sorted(build_dir.glob("*.dist-info")):
        meta = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        name, version = normalise(meta["Name"]), meta["Version"]
        packaged.add(name)
        if name not in pins:
            found.append(f"{name} {version} is packaged but not in the lock")
        elif pins[name] != version:
            found.append(f"{name} is packaged at {version}, the lock pins {pins[name]}")
        with (info / "RECORD").open(encoding="utf-8", newline="") as record:
            for row in csv.reader(record):
                path = (build_dir / row[0]).resolve()
                recorded.add(path)
                if row[1] and path.is_file() and _digest(path) != row[1]:
                    found.append(f"{row[0]} differs from its RECORD hash")
    found += [
        f"{name}=={pins[name]} is in the lock but not packaged"
        for name in sorted(set(pins) - packaged)
    ]
    for path in sorted(p for p in build_dir.rglob("*") if p.is_file()):
        if path.resolve() not in recorded and not _recorded(path, build_dir):
            found.append(f"{path.relative_to(build_dir)} is in no RECORD")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--build-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    pins = lock_pins(args.lock.read_text(encoding="utf-8"))
    found = problems(args.build_dir, pins)
    for line in found:
        print(f"{args.build_dir}: {line}", file=sys.stderr)
    if not found:
        print(f"{args.build_dir}: {len(pins)} distributions, each the lock's, every file recorded")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
