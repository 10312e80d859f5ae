"""The module map of ``docs/development.md`` ("The function's modules") is the map of the imports:
every module of ``src/handler`` has a row, and each row lists exactly the modules of ``handler``
that the module imports. A new import in the wrong place fails here, and so does a map left
behind by a change. Two rules more: the flows are peers, and only the result store touches the
container's memory."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "src" / "handler"
DOC = ROOT / "docs" / "development.md"


def module_name(path: Path) -> str:
    """``flows/created.py`` -> ``flows.created``; every module of ``totals/`` is ``totals``."""
    parts = path.relative_to(HANDLER).with_suffix("").parts
    if parts[0] == "totals":
        return "totals"
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def handler_imports(tree: ast.Module) -> set[str]:
    """The modules of ``handler`` that ``tree`` imports, anywhere in it (``TYPE_CHECKING``
    blocks and function bodies too), as the map names them."""
    found: set[str] = set()

    def add(dotted: str) -> None:
        rest = dotted.removeprefix("handler.")
        found.add("totals" if rest.split(".")[0] == "totals" else rest)

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "handler":
                for alias in node.names:
                    add(f"handler.{alias.name}")
            elif node.module.startswith("handler."):
                add(node.module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("handler."):
                    add(alias.name)
    return found


def actual() -> dict[str, set[str]]:
    """Each module of the map (``totals`` as one), with what it imports of ``handler``."""
    modules: dict[str, set[str]] = {}
    for path in sorted(HANDLER.rglob("*.py")):
        name = module_name(path)
        if path.name == "__init__.py" and name != "totals":
            continue  # package docstrings only
        imports = handler_imports(ast.parse(path.read_text(encoding="utf-8")))
        modules.setdefault(name, set()).update(imports - {name})
    # Inside totals/ the core imports itself; the map says what totals imports from outside.
    modules["totals"] = {name for name in modules["totals"] if name != "totals"}
    return modules


def documented() -> dict[str, set[str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- layers:begin -->")[1].split("<!-- layers:end -->")[0]
    rows: dict[str, set[str]] = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        rows[cells[0].strip("`")] = set(re.findall(r"`([a-z_.]+)`", cells[2]))
    return rows


def test_every_module_has_a_row_and_every_row_a_module() -> None:
    assert sorted(documented()) == sorted(actual())


def test_each_row_lists_exactly_what_its_module_imports() -> None:
    doc = documented()
    wrong = {
        name: {
            "imports but the map omits": sorted(imports - doc.get(name, set())),
            "listed but not imported": sorted(doc.get(name, set()) - imports),
        }
        for name, imports in actual().items()
        if imports != doc.get(name)
    }
    assert wrong == {}


def test_the_two_flows_never_import_each_other() -> None:
    imports = actual()
    assert "flows.deleted" not in imports["flows.created"]
    assert "flows.created" not in imports["flows.deleted"]


def test_only_the_result_store_touches_the_containers_memory() -> None:
    touching = {
        module_name(path)
        for path in HANDLER.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Name) and node.id == "KNOWN")
        or (isinstance(node, ast.alias) and node.name == "KNOWN")
        or (isinstance(node, ast.Attribute) and node.attr == "KNOWN")
    }
    assert touching == {"result_store"}


def test_the_rules_know_nothing_of_s3_or_lambda() -> None:
    for path in [*(HANDLER / "rules").glob("*.py"), HANDLER / "outcomes.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        outside = {
            name
            for name in names
            if name.split(".")[0] in {"boto3", "botocore", "aws_lambda_powertools"}
        }
        assert outside == set(), path
        assert not handler_imports(tree) & {"storage", "result_store", "app", "quarantine"}, path
