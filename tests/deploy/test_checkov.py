"""checkov over the Terraform, the Dockerfiles and the GitHub workflows, offline.

The suite fails on any finding not accepted, with its reason, in checkov_skips.yaml, and
on an accepted finding that no longer occurs (so the file never lists stale exceptions).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.deploy.conftest import run_tool

SKIPS = Path(__file__).with_name("checkov_skips.yaml")
# What checkov scans: everything deployable, nothing of the package, the tests or the venvs.
NOT_SCANNED = [r"\.venv", "dbt/", "beam_ecommerce/", "tests/", "benchmarks/", "demo/", "warehouse/"]


def accepted() -> dict[tuple[str, str], str]:
    """{(check id, resource): reason} from the skip file; every entry must give a reason."""
    entries = yaml.safe_load(SKIPS.read_text())
    found = {}
    for entry in entries:
        assert len(entry["reason"].split()) >= 8, f"{entry['check']}: give a real reason"
        for resource in entry["resources"]:
            found[(entry["check"], resource)] = entry["reason"]
    return found


def test_checkov_finds_nothing_but_the_accepted_findings() -> None:
    args = ["-d", ".", "--framework", "terraform", "dockerfile", "github_actions"]
    for path in NOT_SCANNED:
        args += ["--skip-path", path]
    # Variables as a real deployment sets them (checkov evaluates them into the checks).
    args += ["--var-file", "terraform/terraform.tfvars.example", "--skip-download", "-o", "json", "--quiet"]
    result = run_tool("checkov", *args)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {report["check_type"] for report in reports} == {"terraform", "dockerfile", "github_actions"}
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        assert report["summary"]["passed"] > 0, report["check_type"]
    failed = {
        (finding["check_id"], finding["resource"]): finding["check_name"]
        for report in reports
        for finding in report["results"]["failed_checks"]
    }
    skips = accepted()
    unaccepted = {
        f"{check} {resource}: {name}" for (check, resource), name in failed.items() if (check, resource) not in skips
    }
    assert unaccepted == set(), "fix these or accept them, with a reason, in checkov_skips.yaml"
    stale = set(skips) - set(failed)
    assert stale == set(), "these accepted findings no longer occur: remove them from checkov_skips.yaml"
