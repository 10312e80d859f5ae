"""Check that every native module ``sam build`` packaged is built for the function's architecture.

Why: the template's ``Architectures`` defaults to arm64 while developers and CI build on x86_64.
``sam build`` picks wheels for the target architecture, but a wheel resolved for the build
machine instead (a cache, a source build, a pin without an aarch64 wheel) would package an
x86_64 ``.so`` that fails only at import, inside Lambda. This reads each shared object's ELF
header (the ``e_machine`` field) and each wheel's ``WHEEL`` tags, and names every one that
disagrees with the architecture the template asks for.

    python -m checks.native_arch --build-dir .aws-sam/build/MarketTotalsFunction \
        [--architecture arm64|x86_64]   (default: the template's Architectures parameter default)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from checks.template_variants import ROOT, TemplateShapeError, default_of

#: ELF ``e_machine`` values (System V ABI) of the two Lambda architectures.
MACHINES: Final = {"x86_64": 62, "arm64": 183}
#: The platform-tag spelling of each architecture in wheel tags (manylinux_2_17_aarch64, ...).
WHEEL_ARCH: Final = {"x86_64": "x86_64", "arm64": "aarch64"}
MACHINE_NAMES: Final = {value: name for name, value in MACHINES.items()}
_ELF_MAGIC: Final = b"\x7fELF"
_HEADER_BYTES: Final = 20  # e_ident (16) + e_type (2) + e_machine (2)


class NotElf(ValueError):
    """The file is not an ELF shared object."""


def elf_machine(header: bytes) -> int:
    """The ``e_machine`` field of an ELF header, in the byte order its ``EI_DATA`` names."""
    if len(header) < _HEADER_BYTES or not header.startswith(_ELF_MAGIC):
        raise NotElf("no ELF header")
    if header[5] not in (1, 2):
        raise NotElf(f"unknown EI_DATA {header[5]}")
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def wheel_platforms(wheel_file: str) -> list[str]:
    """The platform parts of a ``WHEEL`` file's ``Tag:`` lines (``any`` for pure wheels)."""
    return [
        line.split(":", 1)[1].strip().rsplit("-", 1)[-1]
        for line in wheel_file.splitlines()
        if line.startswith("Tag:")
    ]


@dataclass(frozen=True)
class Mismatch:
    """One packaged file built for another architecture."""

    path: Path
    found: str

    def __str__(self) -> str:
        return f"{self.path}: built for {self.found}"


def shared_objects(build_dir: Path) -> Iterator[Path]:
    """Every ``*.so`` (and versioned ``*.so.N``) file under ``build_dir``."""
    for path in sorted(build_dir.rglob("*.so*")):
        if path.is_file() and (path.suffix == ".so" or ".so." in path.name):
            yield path


def mismatches(build_dir: Path, architecture: str) -> tuple[list[Mismatch], int]:
    """The packaged files not built for ``architecture``, and how many ``.so`` were read."""
    wanted = MACHINES[architecture]
    found: list[Mismatch] = []
    count = 0
    for path in shared_objects(build_dir):
        with path.open("rb") as file:
            header = file.read(_HEADER_BYTES)
        try:
            machine = elf_machine(header)
        except NotElf as error:
            found.append(Mismatch(path, str(error)))
            continue
        count += 1
        if machine != wanted:
            found.append(Mismatch(path, MACHINE_NAMES.get(machine, f"e_machine {machine}")))
    for wheel in sorted(build_dir.glob("*.dist-info/WHEEL")):
        platforms = wheel_platforms(wheel.read_text(encoding="utf-8"))
        wrong = [p for p in platforms if p != "any" and not p.endswith(WHEEL_ARCH[architecture])]
        if wrong:
            found.append(Mismatch(wheel, ", ".join(wrong)))
    return found, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--build-dir", type=Path, required=True)
    parser.add_argument("--architecture", choices=sorted(MACHINES))
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)
    try:
        architecture = args.architecture or default_of(
            args.template.read_text(encoding="utf-8"), "Architectures"
        )
    except (OSError, TemplateShapeError) as error:
        print(f"native_arch: {error}", file=sys.stderr)
        return 1
    if architecture not in MACHINES:
        print(f"native_arch: unknown architecture {architecture!r}", file=sys.stderr)
        return 1
    if not args.build_dir.is_dir():
        print(f"native_arch: {args.build_dir} is missing: run sam build first", file=sys.stderr)
        return 1
    found, count = mismatches(args.build_dir, architecture)
    if found:
        print(f"native modules not built for {architecture}:", file=sys.stderr)
        for mismatch in found:
            print(f"  {mismatch}", file=sys.stderr)
        return 1
    print(f"{count} native module(s) in {args.build_dir} built for {architecture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
