"""Where ``beam-ecommerce generate`` sends its records, from its flags and the environment.

The names are the platform's (terraform/): the topic ``NAME_PREFIX-events`` and the
bucket ``PROJECT-NAME_PREFIX-landing``, whose ``landing/dt=YYYY-MM-DD/events-*`` files
the Airflow DAG loads for day YYYY-MM-DD. In the generator image ``GOOGLE_CLOUD_PROJECT``
names the project, as on Cloud Run and in Cloud Shell.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

NAME_PREFIX = "beam-ecommerce"
"""terraform/variables.tf's default ``name_prefix``."""
PROJECT_VARIABLE = "GOOGLE_CLOUD_PROJECT"
DEFAULT_OUTPUT = "data/landing"
DEFAULT_GCS_PREFIX = "landing"
TOPIC_PATTERN = re.compile(r"projects/[^/]+/topics/[^/]{3,}")
"""A full Pub/Sub topic name; the service rejects topic ids under 3 characters."""


class DestinationError(ValueError):
    """The flags name no destination, or more than one; the message says what to give."""


@dataclass(frozen=True)
class Destination:
    """Either a Pub/Sub topic (``topic``) or a folder or ``gs://`` prefix (``output``); ``why`` says why.

    ``file_format`` is the format files get: ``--format``'s, else CSV in the landing
    bucket, as the seed's upload wrote, JSON lines elsewhere.
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
    file_format: str | None,
    gcs_upload: bool,
    gcs_bucket: str | None,
    gcs_prefix: str,
    day: date,
    environ: Mapping[str, str],
) -> Destination:
    """The one destination the flags ask for; with none, the platform's topic if a project is set, else a folder.

    ``--gcs-upload`` and ``--gcs-bucket`` both mean the landing bucket (``--gcs-upload``
    alone: the platform's bucket in ``GOOGLE_CLOUD_PROJECT``), under the DAG's
    ``landing/dt=DAY/``. ``file_format`` (``--format``) overrides the destination's own.
    """
    project = environ.get(PROJECT_VARIABLE, "").strip()
    to_gcs = gcs_upload or gcs_bucket is not None
    given = (("--output", output), ("--pubsub-topic", pubsub_topic), ("--gcs-upload/--gcs-bucket", to_gcs))
    chosen = [flag for flag, value in given if value]
    if len(chosen) > 1:
        raise DestinationError(f"give one destination, not {' and '.join(chosen)}")
    if pubsub_topic:
        if not TOPIC_PATTERN.fullmatch(pubsub_topic):
            raise DestinationError(f"--pubsub-topic must look like projects/PROJECT/topics/TOPIC, not {pubsub_topic!r}")
        return Destination(topic=pubsub_topic, why="--pubsub-topic")
    if output:
        return Destination(output=output, why="--output", file_format=file_format or "jsonl")
    if to_gcs:
        bucket = (gcs_bucket or "").removeprefix("gs://").strip("/")
        if not bucket and not project:
            raise DestinationError(f"--gcs-upload needs --gcs-bucket BUCKET (or {PROJECT_VARIABLE} for the platform's)")
        output = landing_output(bucket or landing_bucket(project), gcs_prefix, day)
        return Destination(output=output, why=f"the batch DAG's folder for {day}", file_format=file_format or "csv")
    if project:
        return Destination(topic=platform_topic(project), why=f"{PROJECT_VARIABLE}={project} and no other destination")
    return Destination(output=DEFAULT_OUTPUT, why="the default folder", file_format=file_format or "jsonl")


def clear_output(output: str, overwrite: bool) -> None:
    """Stops a new data set from landing beside an old one in ``output``, which a pattern would read as one:
    ``DestinationError`` if event files are there, unless ``overwrite``, which removes them."""
    if "://" in output:
        from apache_beam.io.filesystems import FileSystems  # only for remote outputs: Beam costs the start-up

        try:
            existing = [m.path for m in FileSystems.match([FileSystems.join(output, "events-*")])[0].metadata_list]
        except Exception:  # noqa: BLE001 - an unreadable output fails with its own error when written
            return
        remove: Callable[[list[str]], None] = FileSystems.delete
    else:
        existing = glob.glob(os.path.join(glob.escape(output), "events-*"))
        remove = _remove_local_files
    if existing and not overwrite:
        raise DestinationError(
            f"{output} already holds {len(existing)} event files: choose another --output or --overwrite"
        )
    if existing:
        remove(existing)


def _remove_local_files(paths: list[str]) -> None:
    for path in paths:
        os.remove(path)
