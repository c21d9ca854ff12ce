"""The GitHub Actions workflows: what they run, that they hold no secrets (checkov scans them too),
and that zizmor's security audit and actionlint (node20 runtime included) find nothing."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.conftest import REPO, run_tool

WORKFLOWS = REPO / ".github" / "workflows"


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def commands(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


# `uses: owner/name@<40-hex commit> # vX.Y.Z`: the commit is what runs, the comment what it is.
PINNED = re.compile(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+(?:\.\d+)*)$", re.MULTILINE)


def test_every_action_is_pinned_to_a_commit_with_its_version_and_no_secret_is_used() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert len(PINNED.findall(text)) == text.count("uses: "), f"{path.name}: pin every action to a commit"
        assert "secrets." not in text, f"{path.name}: use Workload Identity Federation and variables, not secrets"


def test_zizmor_finds_nothing() -> None:
    audit = run_tool("zizmor", "--offline", "--no-progress", str(WORKFLOWS))
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    lint = run_tool("actionlint", "-no-color", *map(str, sorted(WORKFLOWS.glob("*.yml"))))
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_no_action_runs_on_a_retired_node_runtime(tmp_path: Path) -> None:
    """actionlint knows each popular action's runtime by its version tag, not by a commit: the
    workflows are linted once more with each commit replaced by the version its comment names."""
    copies = tmp_path / ".github" / "workflows"
    copies.mkdir(parents=True)
    for path in WORKFLOWS.glob("*.yml"):
        (copies / path.name).write_text(PINNED.sub(r"uses: \1@\3", path.read_text()))
    lint = run_tool("actionlint", "-no-color", *map(str, sorted(copies.glob("*.yml"))))
    assert "node20" not in lint.stdout and "node16" not in lint.stdout, lint.stdout
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_a_version_tag_publishes_both_flex_templates_and_the_generator_image() -> None:
    release = workflow("release.yml")
    assert release[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert release["env"]["TAG"] == "${{ github.ref_name }}"
    jobs = release["jobs"]
    assert "templates/build.sh" in commands(jobs["flex-templates"])
    # build.sh falls back to `terraform output` for any setting the environment lacks.
    build = (REPO / "templates" / "build.sh").read_text()
    for variable in re.findall(r'^(\w+)="\$\{\1:-\$\(tf_output', build, re.MULTILINE):
        assert variable in release["env"] or variable in jobs["flex-templates"]["env"], variable
    generator = commands(jobs["generator-image"])
    assert "docker build -f templates/generator/Dockerfile" in generator and 'docker push "$image"' in generator
    for job in jobs.values():
        assert job["permissions"] == {"contents": "read", "id-token": "write"}


def test_pull_requests_touching_terraform_get_a_plan() -> None:
    plan = workflow("terraform_plan.yml")
    assert "terraform/**" in plan[True]["pull_request"]["paths"]
    (job,) = plan["jobs"].values()
    assert "terraform plan -lock=false" in commands(job)
    assert "-backend-config" in commands(job)


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
