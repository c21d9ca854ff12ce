"""One run of the batch DAG through Airflow's own ``dag.test()``, Google's services played.

What is real: Airflow 3 (its metadata database in a throw-away SQLite file, the DAG
processor's serialization, the task runner, XComs, the deferrals and their triggers run
in line), every operator of the DAG and the ``dbt_build`` shell command (a stand-in dbt
executable that records what it was asked).

What is played, at the one method of each Google hook that calls a Google API: listing
the landing objects (the sensor's first poke and its trigger), launching the Flex Template, the job's state
and job record (Dataflow), and the check query (BigQuery ``insert_job``, which refuses a
query whose ``@parameters`` it was not given, as BigQuery does), and the credentials
(anonymous, for the Variable's project, where a worker would have ADC). The sensor's 5-minute
quiet period is shortened to nothing and retries are off: the test does not wait for
wall-clock time.
"""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
from airflow.providers.google.cloud.hooks.dataflow import AsyncDataflowHook, DataflowHook, DataflowJobStatus
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.triggers.gcs import GCSUploadSessionTrigger
from airflow.providers.google.common.hooks.base_google import GoogleBaseHook
from google.auth.credentials import AnonymousCredentials
from google.cloud.dataflow_v1beta3 import JobState

from tests.airflow.conftest import DAGS_FOLDER

# The run Airflow schedules at midnight on the 27th: it must process the 26th.
SCHEDULED_AT = datetime(2026, 11, 27, tzinfo=UTC)
PROJECT = "my-shop"


class PlayedGoogle:
    """What the DAG asked Google's APIs, and the answers a healthy day gets."""

    def __init__(self) -> None:
        self.listed: list[tuple[str, str]] = []
        self.launched: list[dict] = []
        self.queries: list[dict] = []

    def list_objects(self, bucket_name: str, prefix: str | None = None, **_: object) -> list[str]:
        self.listed.append((bucket_name, prefix))
        return [f"{prefix}0001.jsonl", f"{prefix}0002.jsonl"]

    async def list_blobs(self, hook, bucket_name: str, prefix: str) -> list[str]:
        return self.list_objects(bucket_name, prefix)

    def launch(self, body: dict, location: str, project_id: str, **_: object) -> dict:
        self.launched.append({"body": body, "location": location, "project_id": project_id})
        return {"id": "2026-11-27_00_05_00-1", "name": body["launchParameter"]["jobName"], "projectId": project_id}

    async def job_status(self, job_id: str, project_id: str, location: str, **_: object) -> JobState:
        return JobState.JOB_STATE_DONE

    def get_job(self, job_id: str, project_id: str, location: str, **_: object) -> dict:
        return {"id": job_id, "currentState": DataflowJobStatus.JOB_STATE_DONE}

    def insert_job(self, configuration: dict, project_id: str | None = None, **_: object):
        query = configuration["query"]
        given = {p["name"] for p in query.get("queryParameters", [])}
        missing = set(re.findall(r"@(\w+)", query["query"])) - given
        if missing:  # BigQuery: "Query parameter 'run_id' not found"
            raise RuntimeError(f"Query parameter {sorted(missing)[0]!r} not found")
        self.queries.append({"configuration": configuration, "project_id": project_id})
        return SimpleNamespace(
            job_id="check-1",
            state="DONE",
            error_result=None,
            running=lambda: False,
            result=lambda: iter([(True, True, True)]),
        )


@pytest.fixture
def played(monkeypatch) -> PlayedGoogle:
    google = PlayedGoogle()
    monkeypatch.setattr(GCSHook, "list", google.list_objects)
    monkeypatch.setattr(GCSUploadSessionTrigger, "_list_blobs_with_prefix", google.list_blobs)
    monkeypatch.setattr(DataflowHook, "launch_job_with_flex_template", google.launch)
    monkeypatch.setattr(DataflowHook, "get_job", google.get_job)
    monkeypatch.setattr(AsyncDataflowHook, "get_job_status", google.job_status)
    monkeypatch.setattr(BigQueryHook, "insert_job", google.insert_job)
    # Who the hooks run as: anonymous credentials for the project, as ADC would give them.
    monkeypatch.setattr(
        GoogleBaseHook, "get_credentials_and_project_id", lambda hook: (AnonymousCredentials(), PROJECT)
    )
    return google


@pytest.fixture
def fake_dbt(tmp_path: Path) -> tuple[Path, Path]:
    """A dbt executable that records its arguments and environment, and succeeds."""
    record = tmp_path / "dbt-call.json"
    dbt = tmp_path / "dbt"
    dbt.write_text(
        "#!/bin/sh\n"
        f'printf \'{{"argv": "%s", "project": "%s", "dataset": "%s"}}\' "$*" '
        f'"$BEAM_ECOMMERCE_GCP_PROJECT" "$BEAM_ECOMMERCE_BQ_DATASET" > {record}\n'
    )
    dbt.chmod(dbt.stat().st_mode | stat.S_IEXEC)
    return dbt, record


@pytest.fixture
def airflow_db():
    from airflow.utils import db

    db.resetdb()


def test_a_scheduled_run_processes_the_previous_day_end_to_end(airflow_db, played, fake_dbt, monkeypatch) -> None:
    dbt, record = fake_dbt
    monkeypatch.setenv("AIRFLOW_VAR_BEAM_ECOMMERCE", json.dumps({"project_id": PROJECT, "dbt_executable": str(dbt)}))
    # The DAG's connection, with no credentials in it: nothing may reach Google.
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform", "extra": {}})
    )
    dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["beam_ecommerce_batch"]
    sensor = dag.get_task("wait_for_files")
    sensor.inactivity_period, sensor.poke_interval = 0, 0
    for task in dag.tasks:  # a failure shows at once instead of after minutes of retry delay
        task.retries = 0
    # Airflow 3.3.2's dag.test() cannot close a successful run of a DAG with a deadline alert
    # (it looks the alert up by its serialized form instead of its id); test_batch_dag.py
    # checks the deadline itself.
    dag.deadline = None

    # Airflow's own timetable says which data interval the run at SCHEDULED_AT covers.
    run = dag.test(logical_date=SCHEDULED_AT, run_after=SCHEDULED_AT)

    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (run.data_interval_start, run.data_interval_end) == (datetime(2026, 11, 26, tzinfo=UTC), SCHEDULED_AT)
    assert played.listed[0] == (f"{PROJECT}-beam-ecommerce-landing", "landing/dt=2026-11-26/events-")
    (launch,) = played.launched
    parameters = launch["body"]["launchParameter"]["parameters"]
    assert parameters["input"] == f"gs://{PROJECT}-beam-ecommerce-landing/landing/dt=2026-11-26/events-*"
    assert parameters["dead_letter_dir"] == f"gs://{PROJECT}-beam-ecommerce-dead-letter/batch"
    assert parameters["pii_hash_key_secret"].endswith("/secrets/beam-ecommerce-pii-hash-key/versions/latest")
    assert (launch["project_id"], launch["location"]) == (PROJECT, "europe-west1")
    assert json.loads(record.read_text()) == {
        "argv": "build --target bigquery --project-dir /opt/beam-ecommerce/dbt --profiles-dir /opt/beam-ecommerce/dbt",
        "project": PROJECT,
        "dataset": "analytics",
    }
    (check,) = played.queries
    values = {p["name"]: p["parameterValue"]["value"] for p in check["configuration"]["query"]["queryParameters"]}
    assert values["run_id"] == parameters["run_id"]
    assert check["project_id"] == PROJECT
