"""The package as a user installs it: a wheel in a fresh venv, run from a directory outside the checkout.

The wheel is built from the checkout (pip, with build isolation) and installed into a new
venv with ``--no-deps``. Its dependencies (Beam, DuckDB, dbt: about 1.7 GB) are not
downloaded again: a ``.pth`` file puts the project venv's site-packages on the new venv's
path. A path added by a ``.pth`` file comes after the venv's own site-packages and its
own ``.pth`` files are not run, so the project's editable install there is invisible:
``beam_ecommerce`` is the wheel's (the test checks it), the libraries are the same
versions the constraints pin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900):
    """Runs a command, never with this checkout on PYTHONPATH (pip would take it for the installed package)."""
    env = env or {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{argv} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(root), str(REPO)], root)
    (wheel,) = root.glob("beam_ecommerce-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], root)
    bin_dir = venv / "bin"
    purelib = Path(
        _run(
            [str(bin_dir / "python"), "-c", "import sysconfig;print(sysconfig.get_path('purelib'))"], root
        ).stdout.strip()
    )
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], root)
    # After the install: pip would take the project's editable install there for this package.
    (purelib / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return bin_dir


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """An empty directory outside the checkout, with no project variable set."""
    return tmp_path_factory.mktemp("newcomer")


def _clean_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAM_ECOMMERCE_") and k != "PYTHONPATH"}
    return env | {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}


def test_the_package_is_the_wheels_with_its_dbt_project_and_licence(installed, outside):
    code = (
        "import beam_ecommerce, importlib.metadata as m; from beam_ecommerce.dbt_project import PROJECT_DIR;"
        "print(beam_ecommerce.__file__); print(PROJECT_DIR); print(m.metadata('beam-ecommerce')['License'])"
    )
    module, project, licence = _run(
        [str(installed / "python"), "-c", code], outside, _clean_env(installed)
    ).stdout.split()
    venv = installed.parent
    assert Path(module).is_relative_to(venv) and Path(project).is_relative_to(venv)
    assert (Path(project) / "dbt_project.yml").is_file() and (Path(project) / "profiles.yml").is_file()
    assert not any(Path(project).rglob("*.duckdb")), "no warehouse travels in the wheel"
    assert licence == "MIT"


def test_the_demo_runs_from_an_empty_directory_outside_the_checkout(installed, outside):
    """`beam-ecommerce demo --no-stream` from the wheel: generate, batch, dbt build on the packaged project."""
    run = _run(
        [str(installed / "beam-ecommerce"), "demo", "-q", "--no-stream", "--num-events", "3000"],
        outside,
        _clean_env(installed),
    )
    assert "reconciliation OK" in run.stdout
    assert f"(project {installed.parent}" in run.stdout, "dbt ran the wheel's project"
    assert "dbt build OK" in run.stdout
    assert (outside / "demo" / "warehouse" / "ecommerce.duckdb").is_file()


def test_dbt_build_from_the_project_folder_needs_no_variable_after_the_demo(installed, outside):
    """The seed's `cd dbt && dbt build` beside the demo's output: the profile's default is the demo's warehouse."""
    if not (outside / "demo" / "warehouse" / "ecommerce.duckdb").is_file():
        pytest.fail("the demo test above did not leave its warehouse")
    shutil.copytree(REPO / "dbt", outside / "dbt", ignore=shutil.ignore_patterns("target", "logs"))
    dbt = Path(sys.executable).parent / "dbt"
    run = _run([str(dbt), "build"], outside / "dbt", _clean_env(installed))
    assert f"warehouse: {outside / 'demo' / 'warehouse' / 'ecommerce.duckdb'}" in run.stdout
    assert "Completed successfully" in run.stdout
