"""Write one copy of ``template.yaml`` per allowed value of a parameter (default ``Trigger``),
with that value as the parameter's ``Default``, and print the copies' paths, one per line.

``sam validate --lint`` and checkov evaluate a template's Conditions with the parameters'
defaults only, so a path that another ``Trigger`` value switches on would never be checked:
``make template-check`` runs them on every copy. Only the ``Default`` line changes, so each copy
is the template exactly as CloudFormation would deploy it with that value.

The edit is textual (no YAML library, and CloudFormation's short tags survive untouched): the
parameter must be declared at the usual indentation with a ``Default:`` line and a flow-style
``AllowedValues: [a, b, c]`` line, as in ``template.yaml``; anything else is an error.

    python -m checks.template_variants [--template template.yaml] [--parameter Trigger]
                                        [--out .aws-sam/variants]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class TemplateShapeError(ValueError):
    """The parameter is missing, or not declared in the shape this script edits."""


def parameter_block(text: str, name: str) -> tuple[int, int]:
    """``(start, end)`` offsets of the parameter's body: the lines indented under ``  name:``
    inside ``Parameters:``."""
    section = re.search(r"^Parameters:\n((?:(?:[ \t].*|)\n)*)", text, re.MULTILINE)
    if section is None:
        raise TemplateShapeError("no top-level Parameters section")
    header = re.compile(rf"^  {re.escape(name)}:\n((?:(?:    .*|\s*#.*|)\n)*)", re.MULTILINE)
    found = header.search(text, section.start(1), section.end(1))
    if found is None:
        raise TemplateShapeError(f"no parameter {name!r} in Parameters")
    return found.start(1), found.end(1)


def allowed_values(text: str, name: str) -> list[str]:
    """The parameter's ``AllowedValues``, from its flow-style list."""
    start, end = parameter_block(text, name)
    found = re.search(r"^    AllowedValues: \[([^\]]*)\]\s*$", text[start:end], re.MULTILINE)
    if found is None:
        raise TemplateShapeError(f"{name} has no AllowedValues: [...] line")
    values = [value.strip().strip("\"'") for value in found.group(1).split(",")]
    if len(values) < 2 or not all(values):
        raise TemplateShapeError(f"{name}'s AllowedValues must name two values or more")
    return values


def default_of(text: str, name: str) -> str:
    """The parameter's ``Default`` value (quotes removed)."""
    start, end = parameter_block(text, name)
    found = re.search(r"^    Default: (.*?)\s*$", text[start:end], re.MULTILINE)
    if found is None:
        raise TemplateShapeError(f"{name} has no Default line")
    return found.group(1).strip("\"'")


def with_default(text: str, name: str, value: str) -> str:
    """``text`` with the parameter's ``Default`` replaced by ``value``."""
    start, end = parameter_block(text, name)
    body, count = re.subn(
        r"^(    Default: ).*$", rf"\g<1>{value}", text[start:end], flags=re.MULTILINE
    )
    if count != 1:
        raise TemplateShapeError(f"{name} must have exactly one Default line, found {count}")
    return text[:start] + body + text[end:]


def write_variants(template: Path, name: str, out: Path) -> list[Path]:
    """Write ``out/<value>/template.yaml`` for every allowed value; return the paths."""
    text = template.read_text(encoding="utf-8")
    written = []
    for value in allowed_values(text, name):
        path = out / value / template.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(with_default(text, name, value), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--parameter", default="Trigger")
    parser.add_argument("--out", type=Path, default=ROOT / ".aws-sam" / "variants")
    args = parser.parse_args(argv)
    try:
        paths = write_variants(args.template, args.parameter, args.out)
    except (OSError, TemplateShapeError) as error:
        print(f"template_variants: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
