"""beam_ecommerce_batch: the day's landing files -> the batch Flex Template -> dbt -> a check.

Orchestration only; the work happens in Dataflow, dbt and BigQuery:

    plan -> wait_for_files -> run_batch_pipeline -> dbt_build -> check_run

- plan: reads the ``beam_ecommerce`` Variable (settings.py) and computes the run's launch
  body, file prefix and check query (plan.py);
- wait_for_files: waits until the day's files (landing/dt=DATE/events-*) have stopped
  arriving for 5 minutes;
- run_batch_pipeline: launches the batch template (DataflowStartFlexTemplateOperator)
  and waits, deferred, for the job to finish;
- dbt_build: ``dbt build --target bigquery`` from dbt's own virtualenv (a plain
  BashOperator: dbt-bigquery's pins conflict with Airflow's Google provider, and dbt's own
  graph already orders, tests and retries the models; astronomer-cosmos would need dbt
  inside Airflow's environment to render one task per model);
- check_run: the run loaded rows, its dead-letter ratio is within bounds, and dbt's
  staging model has caught up with it.

docs/SETUP_CICD.md documents the settings, the connection and the local docker-compose.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.google.cloud.operators.bigquery import BigQueryCheckOperator
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator
from airflow.providers.google.cloud.sensors.gcs import GCSUploadSessionCompleteSensor
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task
from airflow.timetables.interval import CronDataIntervalTimetable
from beam_ecommerce_dags import alerts, plan, settings

# dbt runs outside Airflow's environment; the command is fixed, its inputs come from env.
DBT_BUILD = (
    '"$DBT_EXECUTABLE" build --target "$DBT_TARGET" --project-dir "$DBT_PROJECT_DIR" --profiles-dir "$DBT_PROJECT_DIR"'
)

with DAG(
    dag_id=plan.DAG_ID,
    description="Landing files -> batch Flex Template -> dbt build -> freshness and dead-letter check",
    # One run per UTC day, started at the midnight that closes it: the run's data interval
    # is that whole day. (Airflow 3's "@daily" is a trigger timetable whose run at
    # midnight has a zero-length interval at that midnight, i.e. the day just starting.)
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["beam-ecommerce"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": alerts.notify_failure,
    },
    # Airflow 3's successor of SLAs: a run still going 6 hours after it was queued is late.
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=6),
        callback=AsyncCallback(alerts.deadline_missed),
    ),
) as dag:

    @task(multiple_outputs=True)
    def plan_run(data_interval_start: Any = None, dag_run: Any = None) -> dict[str, Any]:
        """The run's plan for the day its data interval starts; fails early, with a clear message,
        if the Variable is missing or wrong. A manual run gets the last complete day before it."""
        return plan.plan(settings.load(), data_interval_start, dag_run.run_id)

    run_plan = plan_run()

    wait_for_files = GCSUploadSessionCompleteSensor(
        task_id="wait_for_files",
        bucket=run_plan["landing_bucket"],
        prefix=run_plan["landing_prefix"],
        inactivity_period=5 * 60,
        min_objects=1,
        google_cloud_conn_id=settings.GCP_CONN_ID,
        deferrable=True,
        # Files may come late in the day; the deadline alert says so after 6 hours.
        timeout=timedelta(hours=12).total_seconds(),
        execution_timeout=timedelta(hours=12),
        # Waiting is not failing: a day without files should not burn retries.
        retries=0,
    )

    run_batch_pipeline = DataflowStartFlexTemplateOperator(
        task_id="run_batch_pipeline",
        body=run_plan["launch_body"],
        project_id=run_plan["project_id"],
        location=run_plan["region"],
        gcp_conn_id=settings.GCP_CONN_ID,
        append_job_name=True,
        deferrable=True,
        expected_terminal_state="JOB_STATE_DONE",
    )

    dbt_build = BashOperator(
        task_id="dbt_build",
        bash_command=DBT_BUILD,
        env=run_plan["dbt_env"],
        # Keep PATH, HOME and the Google credentials of the worker.
        append_env=True,
        execution_timeout=timedelta(minutes=45),
    )

    check_run = BigQueryCheckOperator(
        task_id="check_run",
        sql=run_plan["check_sql"],
        query_params=run_plan["check_params"],
        use_legacy_sql=False,
        gcp_conn_id=settings.GCP_CONN_ID,
        # Only the deferrable path sends query_params with the job; the other one runs the
        # SQL through the DB-API hook without them, and BigQuery rejects @run_id.
        deferrable=True,
        # dbt may still be committing when the first try runs: give it a little time.
        retry_delay=timedelta(minutes=2),
    )

    run_plan >> wait_for_files >> run_batch_pipeline >> dbt_build >> check_run
