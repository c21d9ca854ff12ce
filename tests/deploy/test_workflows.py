"""The GitHub Actions workflows: what they run, and that they hold no secrets (checkov scans them too)."""

from __future__ import annotations

import re

import yaml

from tests.deploy.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def commands(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_every_action_is_pinned_to_a_version_and_no_secret_is_used() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        for action in re.findall(r"uses: (\S+)", text):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", action), f"{path.name}: {action}"
        assert "secrets." not in text, f"{path.name}: use Workload Identity Federation and variables, not secrets"


def test_ci_runs_the_tests_lint_dbt_parse_and_terraform_checks() -> None:
    ci = workflow("ci.yml")
    assert ci["permissions"] == {"contents": "read"}
    jobs = ci["jobs"]
    assert "make test" in commands(jobs["test"]) and "make lint" in commands(jobs["lint"])
    assert re.search(r"dbt parse .*--target bigquery", commands(jobs["dbt-parse"]))
    terraform = commands(jobs["terraform"])
    assert "terraform fmt -check" in terraform and "terraform validate" in terraform
    assert "--target batch" in commands(jobs["template-image"]) and "--target streaming" in commands(
        jobs["template-image"]
    )
    # The same command as .ci/run, which is what this repository's own CI runs.
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_dbt_daily_builds_on_a_schedule_through_workload_identity_federation() -> None:
    daily = workflow("dbt_daily.yml")
    # PyYAML reads the key `on` as True.
    triggers = daily[True]
    assert triggers["schedule"] and "workflow_dispatch" in triggers
    assert daily["permissions"] == {"contents": "read", "id-token": "write"}
    (job,) = daily["jobs"].values()
    (auth,) = [step for step in job["steps"] if str(step.get("uses", "")).startswith("google-github-actions/auth@")]
    assert auth["with"] == {
        "workload_identity_provider": "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}",
        "service_account": "${{ vars.GCP_SERVICE_ACCOUNT }}",
    }
    assert "dbt build --project-dir dbt --profiles-dir dbt --target bigquery" in commands(job)
    # dbt's bigquery target and sources read these (dbt/profiles.yml, the sources' yml).
    dbt_config = "".join(path.read_text() for path in (REPO / "dbt").rglob("*.yml"))
    for variable in job["env"]:
        assert f"env_var('{variable}'" in dbt_config, variable
    assert "BEAM_ECOMMERCE_GCP_PROJECT" in job["env"]


def test_dbt_versions_come_from_the_project_constraints() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "pip install" in line and "dbt" in line:
                assert "-c requirements/constraints.txt" in line and "==" not in line, f"{path.name}: {line.strip()}"
