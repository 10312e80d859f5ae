"""checks/native_arch.py: the packaged native modules' architecture, read from ELF headers and
wheel tags, against the template's ``Architectures`` (``make template-check`` runs it)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from checks import native_arch, template_variants


def elf_header(machine: int, *, big_endian: bool = False) -> bytes:
    """The first 20 bytes of a 64-bit ELF shared object (ET_DYN) for ``machine``."""
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + bytes(9)
    return ident + struct.pack(">HH" if big_endian else "<HH", 3, machine)


def package(build_dir: Path, name: str, machine: int, wheel_tag: str) -> None:
    """A package with one extension module and its dist-info's WHEEL file."""
    (build_dir / name).mkdir(parents=True)
    so = build_dir / name / "_speedups.cpython-313-x86_64-linux-gnu.so"
    so.write_bytes(elf_header(machine) + bytes(44))
    info = build_dir / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {wheel_tag}\n")


@pytest.mark.parametrize(("architecture", "machine"), [("x86_64", 62), ("arm64", 183)])
def test_elf_machine_reads_each_architecture(architecture: str, machine: int) -> None:
    assert native_arch.MACHINES[architecture] == machine
    assert native_arch.elf_machine(elf_header(machine)) == machine
    assert native_arch.elf_machine(elf_header(machine, big_endian=True)) == machine


@pytest.mark.parametrize(
    "header", [b"", b"\x7fELF", b"MZ" + bytes(30), elf_header(62)[:5] + b"\x07" + bytes(14)]
)
def test_elf_machine_refuses_what_is_not_elf(header: bytes) -> None:
    with pytest.raises(native_arch.NotElf):
        native_arch.elf_machine(header)


def test_wheel_platforms_reads_every_tag_line() -> None:
    text = (
        "Wheel-Version: 1.0\n"
        "Tag: cp313-cp313-manylinux_2_17_aarch64\n"
        "Tag: cp313-cp313-manylinux2014_aarch64\n"
    )
    assert native_arch.wheel_platforms(text) == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]


def test_a_build_for_the_asked_architecture_passes(tmp_path: Path) -> None:
    package(tmp_path, "msgspec", 183, "cp313-cp313-manylinux_2_17_aarch64")
    package(tmp_path, "ijson", 183, "cp313-cp313-manylinux_2_28_aarch64")
    (tmp_path / "pure-1.0.dist-info").mkdir()
    (tmp_path / "pure-1.0.dist-info" / "WHEEL").write_text("Tag: py3-none-any\n")
    assert native_arch.mismatches(tmp_path, "arm64") == ([], 2)
    assert native_arch.main(["--build-dir", str(tmp_path), "--architecture", "arm64"]) == 0


def test_each_module_of_another_architecture_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package(tmp_path, "msgspec", 183, "cp313-cp313-manylinux_2_17_aarch64")
    package(tmp_path, "wrapt", 62, "cp313-cp313-manylinux_2_17_x86_64")
    found, count = native_arch.mismatches(tmp_path, "arm64")
    assert count == 2
    assert [(m.path.relative_to(tmp_path).as_posix(), m.found) for m in found] == [
        ("wrapt/_speedups.cpython-313-x86_64-linux-gnu.so", "x86_64"),
        ("wrapt-1.0.dist-info/WHEEL", "manylinux_2_17_x86_64"),
    ]
    assert native_arch.main(["--build-dir", str(tmp_path), "--architecture", "arm64"]) == 1
    assert "wrapt/_speedups" in capsys.readouterr().err


def test_a_file_named_so_that_is_not_elf_is_a_mismatch(tmp_path: Path) -> None:
    (tmp_path / "broken.so").write_bytes(b"not an elf file at all")
    found, count = native_arch.mismatches(tmp_path, "x86_64")
    assert (count, [m.found for m in found]) == (0, ["no ELF header"])


def test_the_architecture_defaults_to_the_template_parameter(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Parameters:\n  Architectures:\n    Type: String\n    Default: x86_64\n"
        "    AllowedValues: [arm64, x86_64]\n"
    )
    package(tmp_path / "build", "msgspec", 62, "cp313-cp313-manylinux_2_17_x86_64")
    args = ["--build-dir", str(tmp_path / "build"), "--template", str(template)]
    assert native_arch.main(args) == 0
    template.write_text(template.read_text().replace("Default: x86_64", "Default: arm64"))
    assert native_arch.main(args) == 1


def test_the_real_template_asks_for_arm64_by_default() -> None:
    text = (template_variants.ROOT / "template.yaml").read_text(encoding="utf-8")
    assert template_variants.default_of(text, "Architectures") == "arm64"


def test_a_missing_build_dir_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        native_arch.main(["--build-dir", str(tmp_path / "nope"), "--architecture", "x86_64"]) == 1
    )
    assert "run sam build first" in capsys.readouterr().err
