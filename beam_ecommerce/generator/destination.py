"""Where ``beam-ecommerce generate`` sends its records, from its flags and the environment.

The names are the platform's (terraform/): the topic ``NAME_PREFIX-events`` and the
bucket ``PROJECT-NAME_PREFIX-landing``, whose ``landing/dt=YYYY-MM-DD/events-*`` files
the Airflow DAG loads for day YYYY-MM-DD. In the generator image ``GOOGLE_CLOUD_PROJECT``
names the project, as on Cloud Run and in Cloud Shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

NAME_PREFIX = "beam-ecommerce"
"""terraform/variables.tf's default ``name_prefix``."""
PROJECT_VARIABLE = "GOOGLE_CLOUD_PROJECT"
DEFAULT_OUTPUT = "data/landing"
DEFAULT_GCS_PREFIX = "landing"


class DestinationError(ValueError):
    """The flags name no destination, or more than one; the message says what to give."""


@dataclass(frozen=True)
class Destination:
    """Either a Pub/Sub topic (``topic``) or a folder or ``gs://`` prefix (``output``); ``why`` says why.

    ``file_format`` is the format files get unless ``--format`` says otherwise: CSV in
    the landing bucket, as the seed's upload wrote, JSON lines elsewhere.
    """

    topic: str | None = None
    output: str | None = None
    why: str = ""
    file_format: str = "jsonl"


def platform_topic(project: str) -> str:
    """The platform's event topic in ``project`` (terraform/pubsub.tf's ``events``)."""
    return f"projects/{project}/topics/{NAME_PREFIX}-events"


def landing_bucket(project: str) -> str:
    """The platform's landing bucket in ``project`` (terraform/storage.tf's ``landing``)."""
    return f"{project}-{NAME_PREFIX}-landing"


def landing_output(bucket: str, prefix: str, day: date) -> str:
    """The folder the batch DAG reads for ``day`` (airflow_dags/beam_ecommerce_dags/plan.py)."""
    return f"gs://{bucket}/{prefix.strip('/')}/dt={day:%Y-%m-%d}"


def choose_destination(
    *,
    output: str | None,
    pubsub_topic: str | None,
    gcs_upload: bool,
    gcs_bucket: str | None,
    gcs_prefix: str,
    day: date,
    environ: Mapping[str, str],
) -> Destination:
    """The one destination the flags ask for; with none, the platform's topic if a project is set, else a folder.

    ``--gcs-upload`` and ``--gcs-bucket`` both mean the landing bucket (``--gcs-upload``
    alone: the platform's bucket in ``GOOGLE_CLOUD_PROJECT``), under the DAG's
    ``landing/dt=DAY/``.
    """
    project = environ.get(PROJECT_VARIABLE, "").strip()
    to_gcs = gcs_upload or gcs_bucket is not None
    given = (("--output", output), ("--pubsub-topic", pubsub_topic), ("--gcs-upload/--gcs-bucket", to_gcs))
    chosen = [flag for flag, value in given if value]
    if len(chosen) > 1:
        raise DestinationError(f"give one destination, not {' and '.join(chosen)}")
    if pubsub_topic:
        return Destination(topic=pubsub_topic, why="--pubsub-topic")
    if output:
        return Destination(output=output, why="--output")
    if to_gcs:
        bucket = (gcs_bucket or "").removeprefix("gs://").strip("/")
        if not bucket and not project:
            raise DestinationError(f"--gcs-upload needs --gcs-bucket BUCKET (or {PROJECT_VARIABLE} for the platform's)")
        output = landing_output(bucket or landing_bucket(project), gcs_prefix, day)
        return Destination(output=output, why=f"the batch DAG's folder for {day}", file_format="csv")
    if project:
        return Destination(topic=platform_topic(project), why=f"{PROJECT_VARIABLE}={project} and no other destination")
    return Destination(output=DEFAULT_OUTPUT, why="the default folder")
