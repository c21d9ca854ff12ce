"""The batch DAG as Airflow loads it: no import errors or deprecations, the documented graph,
retries and deadline, and a launch body that the batch template accepts."""

from __future__ import annotations

import inspect
import json
import re
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom_arg import XComArg
from airflow.serialization.serialized_objects import DagSerialization

from tests.airflow.conftest import DAGS_FOLDER

REPO = Path(__file__).resolve().parents[2]
BATCH_METADATA = json.loads((REPO / "templates" / "batch" / "metadata.json").read_text())
# The run Airflow schedules at midnight on the 27th, for the 26th.
LOGICAL_DATE = datetime(2026, 11, 26, tzinfo=UTC)
AIRFLOW_RUN_ID = "scheduled__2026-11-26T00:00:00+00:00"

# The chain docs/ARCHITECTURE.md and the DAG's docstring describe; plan_run also feeds every task.
DOCUMENTED_CHAIN = ["plan_run", "wait_for_files", "run_batch_pipeline", "dbt_build", "check_run"]


@pytest.fixture(scope="module")
def loaded() -> tuple[DagBag, list[warnings.WarningMessage]]:
    """The real DagBag over airflow_dags/, with every warning raised while it imported the DAG files."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
    return bag, list(caught)


@pytest.fixture(scope="module")
def dag(loaded):
    bag, _ = loaded
    return bag.dags["beam_ecommerce_batch"]


def test_dagbag_imports_without_errors_or_deprecation_warnings(loaded) -> None:
    bag, caught = loaded
    assert bag.import_errors == {}
    assert list(bag.dags) == ["beam_ecommerce_batch"]
    deprecations = [
        f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        for w in caught
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning | FutureWarning)
        or "Deprecat" in w.category.__name__
        or "RemovedIn" in w.category.__name__
    ]
    assert deprecations == []
    assert all(not warnings_ for warnings_ in bag.captured_warnings.values())


def test_task_graph_is_the_documented_chain(dag) -> None:
    assert {task.task_id for task in dag.tasks} == set(DOCUMENTED_CHAIN)
    for upstream, downstream in zip(DOCUMENTED_CHAIN, DOCUMENTED_CHAIN[1:], strict=False):
        assert dag.get_task(upstream).task_id in dag.get_task(downstream).upstream_task_ids
    for later in DOCUMENTED_CHAIN[2:]:
        assert dag.get_task(later).upstream_task_ids == {
            "plan_run",
            DOCUMENTED_CHAIN[DOCUMENTED_CHAIN.index(later) - 1],
        }


@pytest.mark.parametrize(
    ("scheduled_at", "day"),
    [
        (datetime(2026, 11, 27, tzinfo=UTC), "2026-11-26"),
        (datetime(2027, 1, 1, tzinfo=UTC), "2026-12-31"),
        (datetime(2028, 3, 1, tzinfo=UTC), "2028-02-29"),
    ],
)
def test_the_run_scheduled_at_midnight_processes_the_day_that_midnight_closes(dag, scheduled_at, day) -> None:
    """Airflow's own timetable, asked which run it schedules at ``scheduled_at`` and for which data."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    previous = DataInterval(scheduled_at - timedelta(days=2), scheduled_at - timedelta(days=1))
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=previous,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert info.run_after == scheduled_at
    assert (info.data_interval.start, info.data_interval.end) == (scheduled_at - timedelta(days=1), scheduled_at)
    assert f"{info.data_interval.start:%Y-%m-%d}" == day


def test_a_manual_run_processes_the_last_complete_day(dag) -> None:
    interval = dag.timetable.infer_manual_data_interval(run_after=datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
    assert (interval.start, interval.end) == (datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))


def test_schedule_retries_timeouts_and_alerts(dag) -> None:
    assert dag.timetable.summary == "0 0 * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        limit = timedelta(hours=12 if task.task_id == "wait_for_files" else 2)
        assert task.execution_timeout is not None and task.execution_timeout <= limit, task.task_id
        assert task.on_failure_callback, task.task_id
        # Waiting for files is not failing: only the sensor does not retry.
        assert task.retries == (0 if task.task_id == "wait_for_files" else 2), task.task_id


def test_deadline_alert_calls_an_importable_coroutine(dag) -> None:
    from beam_ecommerce_dags import alerts

    (deadline,) = dag.deadline
    assert deadline.interval == timedelta(hours=6)
    assert deadline.callback.path == "beam_ecommerce_dags.alerts.deadline_missed"
    assert inspect.iscoroutinefunction(alerts.deadline_missed)
    subject, body = alerts.deadline_message(
        {"dag_run": {"dag_id": "beam_ecommerce_batch", "run_id": "r1", "state": "running"}, "deadline": {}}
    )
    assert "r1 is late" in subject and "running" in body


def test_dag_survives_the_schedulers_serialization(dag) -> None:
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert sorted(restored.task_ids) == sorted(DOCUMENTED_CHAIN)


def test_operators_take_their_inputs_from_the_run_plan(dag) -> None:
    wiring = {
        ("wait_for_files", "bucket"): "landing_bucket",
        ("wait_for_files", "prefix"): "landing_prefix",
        ("run_batch_pipeline", "body"): "launch_body",
        ("run_batch_pipeline", "project_id"): "project_id",
        ("run_batch_pipeline", "location"): "region",
        ("dbt_build", "env"): "dbt_env",
        ("check_run", "sql"): "check_sql",
        ("check_run", "query_params"): "check_params",
    }
    for (task_id, attribute), key in wiring.items():
        value = getattr(dag.get_task(task_id), attribute)
        assert isinstance(value, XComArg), (task_id, attribute)
        assert (value.operator.task_id, value.key) == ("plan_run", key), (task_id, attribute)
    assert dag.get_task("run_batch_pipeline").append_job_name is True


def test_plan_task_reads_the_variable_and_plans_the_data_intervals_day(dag, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_BEAM_ECOMMERCE", json.dumps({"project_id": "my-shop", "region": "us-central1"}))

    class DagRun:
        run_id = AIRFLOW_RUN_ID

    planned = dag.get_task("plan_run").python_callable(data_interval_start=LOGICAL_DATE, dag_run=DagRun())
    assert planned["region"] == "us-central1"
    assert planned["landing_prefix"] == "landing/dt=2026-11-26/events-"
    launch = planned["launch_body"]["launchParameter"]
    assert launch["containerSpecGcsPath"] == "gs://my-shop-beam-ecommerce-dataflow/templates/batch.json"
    assert launch["parameters"]["input"] == "gs://my-shop-beam-ecommerce-landing/landing/dt=2026-11-26/events-*"
    assert launch["parameters"]["run_id"] == "airflow-scheduled-2026-11-26t00-00-00-00-00"
    assert launch["parameters"]["bigquery_dataset"] == "my-shop:ecommerce"
    assert launch["environment"]["serviceAccountEmail"] == "beam-ecommerce-dataflow@my-shop.iam.gserviceaccount.com"


def test_plan_task_fails_clearly_without_the_variable(dag, monkeypatch) -> None:
    from beam_ecommerce_dags.settings import SettingsError

    monkeypatch.delenv("AIRFLOW_VAR_BEAM_ECOMMERCE", raising=False)

    class DagRun:
        run_id = AIRFLOW_RUN_ID

    with pytest.raises(SettingsError, match="set the Airflow Variable 'beam_ecommerce'"):
        dag.get_task("plan_run").python_callable(data_interval_start=LOGICAL_DATE, dag_run=DagRun())


def test_launch_parameters_are_what_the_batch_template_accepts() -> None:
    from beam_ecommerce_dags import plan
    from beam_ecommerce_dags.settings import Settings

    body = plan.launch_body(Settings(project_id="my-shop"), LOGICAL_DATE, AIRFLOW_RUN_ID)
    parameters = body["launchParameter"]["parameters"]
    declared = {p["name"]: p for p in BATCH_METADATA["parameters"]}
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    required = {name for name, p in declared.items() if not p.get("isOptional", False)}
    assert required <= set(parameters)
    for name, value in parameters.items():
        assert isinstance(value, str), name  # the launch API takes strings
        for regex in declared[name].get("regexes", []):
            assert re.fullmatch(regex, value), (name, value, regex)
    # Dataflow job names: lower case, digits and dashes, starting with a letter.
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", body["launchParameter"]["jobName"])


def test_settings_reject_unknown_keys_and_bad_names() -> None:
    from beam_ecommerce_dags.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="unknown keys.*landing_bukket"):
        Settings.from_variable({"project_id": "my-shop", "landing_bukket": "x"})
    with pytest.raises(SettingsError, match="project_id"):
        Settings.from_variable({"project_id": "My Shop"})
    custom = Settings.from_variable(
        '{"project_id": "my-shop", "landing_bucket": "shop-files", "alert_emails": ["a@b.c"]}'
    )
    assert (custom.landing_bucket, custom.alert_emails) == ("shop-files", ("a@b.c",))


def test_check_query_uses_parameters_and_the_dbt_staging_dataset() -> None:
    from beam_ecommerce_dags import plan
    from beam_ecommerce_dags.settings import Settings

    settings = Settings(project_id="my-shop", dbt_dataset="analytics")
    sql = plan.check_sql(settings)
    assert "`my-shop.ecommerce.raw_events`" in sql and "`my-shop.ecommerce.dead_letter`" in sql
    assert "`my-shop.analytics_staging.stg_ecommerce__events`" in sql
    params = {p["name"]: p["parameterValue"]["value"] for p in plan.check_params(settings, AIRFLOW_RUN_ID)}
    assert set(re.findall(r"@(\w+)", sql)) == set(params)
    assert params["run_id"] == plan.pipeline_run_id(AIRFLOW_RUN_ID)
