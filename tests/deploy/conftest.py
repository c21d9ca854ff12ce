"""Shared pieces of the deployment checks: the repository's paths and the static-analysis tools.

checkov, hadolint and shellcheck live in .venv-tools (`make test` builds it first). A test
that needs a missing tool skips with the command that installs it, except on CI
(``CI=true``, as .ci/run and GitHub Actions set it), where it fails: a check that
silently did not run is no check.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import hcl2
import pytest
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
TOOLS_BIN = REPO / ".venv-tools" / "bin"


def tool(name: str) -> Path:
    """Path of a tool from .venv-tools; skips (locally) or fails (on CI) when it is not installed."""
    path = TOOLS_BIN / name
    if path.exists():
        return path
    message = f"{name} is not installed: run `make .venv-tools/.installed` (it is part of `make test`)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def run_tool(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs a tool from .venv-tools in the repository root, offline, and returns what it did."""
    return subprocess.run(
        [str(tool(name)), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
        check=False,
    )


# Plain Python values: strings without their quotes, blocks as lists of dicts.
_PLAIN = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


@pytest.fixture(scope="session")
def terraform() -> dict[str, dict]:
    """Every .tf file of terraform/, parsed by python-hcl2: {file name: parsed}."""
    parsed = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            parsed[path.name] = hcl2.load(handle, serialization_options=_PLAIN)
    return parsed


def resources(terraform: dict[str, dict], kind: str) -> dict[str, dict]:
    """The resources of one type across all files: {name: body}."""
    found: dict[str, dict] = {}
    for parsed in terraform.values():
        for block in parsed.get("resource", []):
            for name, body in block.get(kind, {}).items():
                found[name] = body
    return found
