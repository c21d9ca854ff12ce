"""The DAG tests run in .venv-airflow only (`make test-airflow`); the main run ignores them (pyproject addopts).

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports it: a throw-away AIRFLOW_HOME, the repository's DAGs
folder, no example DAGs. Like Airflow itself, the tests put the DAGs folder on sys.path.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow_dags"

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
sys.path.insert(0, str(DAGS_FOLDER))
