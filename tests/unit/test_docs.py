"""The documentation stands on its own: every link in README.md and docs/ resolves inside the
repository (a user's clone has nothing beside it), nothing points outside it, and the make targets
the docs name are the Makefile's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from handler.rules.settings import DEFAULT_PARALLEL_READ_CONCURRENCY
from handler.totals.arithmetic import MAX_DECIMAL_PLACES, MAX_TOTAL_DIGITS

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lowercase, punctuation dropped, spaces to '-'."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves_inside_the_repository(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading for #{anchor}"


def test_nothing_in_the_repository_points_outside_it() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # The team's folder beside the clone, and its spec: spelled in parts so that this file does
    # not name them itself.
    outside = ("/".join(("..", "shared")), "CONTRACT" + ".md")
    # The one exception: CI's entry point may pass a tool from the team's tools folder to a make
    # target as an optional setting (`make target NAME=<that folder>/...`, a whole line); the
    # docs name the setting, never the path.
    ci_setting = re.compile(
        r"^make [\w-]+ [A-Z_]+=" + re.escape("/".join(("..", "shared", "tools"))) + r"/\S+$",
        re.MULTILINE,
    )
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "ignore")
        if name == ".ci/run":
            text = ci_setting.sub("", text)
        if any(mention in text for mention in outside):
            offenders.append(name)
    assert offenders == []


def make_targets() -> set[str]:
    """The targets ``make help`` lists (those with a ``##`` description)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z-]+):.*## ", text, flags=re.MULTILINE))


def test_the_development_page_lists_every_make_target() -> None:
    page = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`make ([a-z-]+)", page))
    assert make_targets() - {"help", "run", "test"} <= named
    assert named <= make_targets()


def test_the_readme_commands_are_make_targets() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^make ([a-z-]+)", readme, flags=re.MULTILINE)) <= make_targets()
    assert "make run" in readme
    assert "make test" in readme


@pytest.mark.parametrize("page", ["README.md", "docs/behaviour.md"])
def test_the_pages_state_the_exactness_limits_of_the_code(page: str) -> None:
    text = " ".join((ROOT / page).read_text(encoding="utf-8").split())
    digits, places = f"{MAX_TOTAL_DIGITS:,}", f"{MAX_DECIMAL_PLACES:,}"
    assert f"up to {digits} significant digits and {places} decimal places" in text


@pytest.mark.parametrize("name", ["samconfig.toml", "template.yaml", "Makefile"])
def test_the_configuration_comments_point_at_what_exists(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    for section in re.findall(r'README "([^"]+)"', text):
        assert section.lower().replace(" ", "-") in anchors(ROOT / "README.md"), section
    for path in re.findall(r"\b((?:docs|scripts|events|src|tests)/[\w./-]*\w)", text):
        assert (ROOT / path).exists(), f"{name} names {path}"


def test_the_template_comment_on_ranged_gets_states_the_setting() -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    [said] = re.findall(r"read with (\d+) ranged GETs", text)
    [set_to] = re.findall(r'PARALLEL_READ_CONCURRENCY: "(\d+)"', text)
    assert int(said) == int(set_to) == DEFAULT_PARALLEL_READ_CONCURRENCY
