"""One marked block of ``docs/benchmarks.md`` rewritten in place: what every benchmark that
writes its figures there (``run.py``, ``hostile.py``, ``runtime.py``) shares, so that each says
only where its block goes the first time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def rewrite_block(
    doc: Path,
    markers: tuple[str, str],
    lines: list[str],
    *,
    if_missing: Callable[[str, str], str],
) -> None:
    """The text between ``markers`` in ``doc`` replaced by ``lines``; where the markers are not
    there yet, ``if_missing(text, block)`` says where the whole block goes."""
    begin, end = markers
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    block = "\n".join([begin, *lines, end])
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = if_missing(text, block)
    doc.write_text(text, encoding="utf-8")
