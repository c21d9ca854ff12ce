"""What one run of the batch DAG does, computed from the settings and the day the run processes
(the start of its data interval: the run at midnight processes the day that midnight closes).

Pure functions, so that the tests can check the launch body, the file pattern and the
check query for any date without Airflow's database or Google credentials.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from beam_ecommerce_dags.settings import Settings

DAG_ID = "beam_ecommerce_batch"


def dataflow_safe(text: str) -> str:
    """``text`` as Dataflow accepts in job names and labels: lower case, digits and dashes."""
    safe = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return safe or "run"


def landing_prefix(settings: Settings, day: datetime) -> str:
    """Object prefix of the day's event files in the landing bucket."""
    return f"{settings.landing_prefix.strip('/')}/dt={day:%Y-%m-%d}/events-"


def pipeline_run_id(airflow_run_id: str) -> str:
    """The pipeline's ``run_id``: the same for every try of one DAG run, so its checks find all its rows."""
    return f"airflow-{dataflow_safe(airflow_run_id)}"[:128]


def launch_body(settings: Settings, day: datetime, airflow_run_id: str) -> dict[str, Any]:
    """The ``projects.locations.flexTemplates.launch`` body for the batch template.

    Parameter names are the template's (templates/batch/metadata.json); the operator
    appends a random suffix to ``jobName``, so every try is a new, uniquely named job.
    """
    date = f"{day:%Y-%m-%d}"
    return {
        "launchParameter": {
            "jobName": f"beam-ecommerce-batch-{day:%Y%m%d}",
            "containerSpecGcsPath": settings.batch_template,
            "parameters": {
                "input": f"gs://{settings.landing_bucket}/{landing_prefix(settings, day)}*",
                "bigquery_dataset": f"{settings.project_id}:{settings.raw_dataset}",
                "dead_letter_dir": f"gs://{settings.dead_letter_bucket}/batch",
                "pii_hash_key_secret": settings.pii_hash_key_secret,
                "run_id": pipeline_run_id(airflow_run_id),
                "batch_size": str(settings.batch_size),
            },
            "environment": {
                "serviceAccountEmail": settings.dataflow_service_account,
                "tempLocation": f"gs://{settings.dataflow_bucket}/tmp",
                "stagingLocation": f"gs://{settings.dataflow_bucket}/staging",
                "maxWorkers": settings.max_workers,
                "additionalUserLabels": {"dag": dataflow_safe(DAG_ID), "day": date},
            },
        }
    }


def dbt_env(settings: Settings) -> dict[str, str]:
    """The environment dbt's ``bigquery`` target reads (dbt/profiles.yml)."""
    return {
        "DBT_EXECUTABLE": settings.dbt_executable,
        "DBT_PROJECT_DIR": settings.dbt_project_dir,
        "DBT_TARGET": settings.dbt_target,
        "BEAM_ECOMMERCE_GCP_PROJECT": settings.project_id,
        "BEAM_ECOMMERCE_BQ_DATASET": settings.dbt_dataset,
        "BEAM_ECOMMERCE_BQ_RAW_DATASET": settings.raw_dataset,
        "BEAM_ECOMMERCE_BQ_LOCATION": settings.bigquery_location,
    }


def check_sql(settings: Settings) -> str:
    """One row of booleans; ``BigQueryCheckOperator`` fails the run unless all are true.

    - the run loaded rows;
    - at most ``@max_dead_letter_ratio`` of its records became dead letters;
    - dbt's staging model has caught up with the latest row the run loaded (freshness).
    """
    raw = f"`{settings.project_id}.{settings.raw_dataset}"
    staging = f"`{settings.project_id}.{settings.staging_dataset}.stg_ecommerce__events`"
    return f"""
with loaded as (
    select count(distinct event_id) as row_count, max(ingested_at) as latest
    from {raw}.raw_events`
    where run_id = @run_id
),
rejected as (
    select count(distinct dead_letter_id) as row_count
    from {raw}.dead_letter`
    where run_id = @run_id
),
built as (
    select max(ingested_at) as latest from {staging}
)
select
    loaded.row_count > 0 as run_loaded_rows,
    safe_divide(rejected.row_count, loaded.row_count + rejected.row_count) <= @max_dead_letter_ratio
        as dead_letter_ratio_ok,
    built.latest >= loaded.latest as staging_is_fresh
from loaded, rejected, built
""".strip()


def check_params(settings: Settings, airflow_run_id: str) -> list[dict[str, Any]]:
    """The query parameters of :func:`check_sql`, in BigQuery's API form."""
    return [
        {
            "name": "run_id",
            "parameterType": {"type": "STRING"},
            "parameterValue": {"value": pipeline_run_id(airflow_run_id)},
        },
        {
            "name": "max_dead_letter_ratio",
            "parameterType": {"type": "FLOAT64"},
            "parameterValue": {"value": str(settings.max_dead_letter_ratio)},
        },
    ]


def plan(settings: Settings, day: datetime, airflow_run_id: str) -> dict[str, Any]:
    """Everything the run's tasks take from the settings, as one XCom."""
    return {
        "project_id": settings.project_id,
        "region": settings.region,
        "landing_bucket": settings.landing_bucket,
        "landing_prefix": landing_prefix(settings, day),
        "launch_body": launch_body(settings, day, airflow_run_id),
        "dbt_env": dbt_env(settings),
        "check_sql": check_sql(settings),
        "check_params": check_params(settings, airflow_run_id),
    }
