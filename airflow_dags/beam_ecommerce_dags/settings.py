"""Settings of the batch DAG: one JSON Airflow Variable over documented defaults.

Only ``project_id`` has no default. Everything else defaults to what ``terraform/``
creates for that project (bucket and account names follow the same pattern), so the
minimal configuration is ``airflow variables set beam_ecommerce '{"project_id": "P"}'``.
docs/SETUP_CICD.md lists every key.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VARIABLE = "beam_ecommerce"
# Every Google operator of the DAG authenticates through this connection (ADC by default).
GCP_CONN_ID = "google_cloud_default"


class SettingsError(ValueError):
    """The Variable does not describe a usable configuration."""


@dataclass(frozen=True)
class Settings:
    """Where the platform lives and how the DAG drives it; names match terraform/'s defaults."""

    project_id: str
    region: str = "europe-west1"
    name_prefix: str = "beam-ecommerce"
    bigquery_location: str = "EU"
    raw_dataset: str = "ecommerce"
    dbt_dataset: str = "analytics"
    # Files for logical date D land under gs://LANDING/landing_prefix/dt=D/events-*.
    landing_prefix: str = "landing"
    max_workers: int = 4
    batch_size: int = 1000
    # The run fails its check when more of its records than this became dead letters.
    max_dead_letter_ratio: float = 0.05
    # dbt runs from its own virtualenv (it conflicts with Airflow's dependencies).
    dbt_executable: str = "/opt/dbt/bin/dbt"
    dbt_project_dir: str = "/opt/beam-ecommerce/dbt"
    dbt_target: str = "bigquery"
    alert_emails: tuple[str, ...] = ()
    # Derived from project_id and name_prefix unless given.
    landing_bucket: str = ""
    dead_letter_bucket: str = ""
    dataflow_bucket: str = ""
    dataflow_service_account: str = ""
    pii_hash_key_secret: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", self.project_id or ""):
            raise SettingsError(f"project_id must be a Google Cloud project ID, not {self.project_id!r}")
        for name in ("raw_dataset", "dbt_dataset"):
            if not re.fullmatch(r"[A-Za-z0-9_]{1,1024}", getattr(self, name)):
                raise SettingsError(f"{name} must be a BigQuery dataset name, not {getattr(self, name)!r}")
        derived = {
            "landing_bucket": f"{self.project_id}-{self.name_prefix}-landing",
            "dead_letter_bucket": f"{self.project_id}-{self.name_prefix}-dead-letter",
            "dataflow_bucket": f"{self.project_id}-{self.name_prefix}-dataflow",
            "dataflow_service_account": f"{self.name_prefix}-dataflow@{self.project_id}.iam.gserviceaccount.com",
            "pii_hash_key_secret": (
                f"projects/{self.project_id}/secrets/{self.name_prefix}-pii-hash-key/versions/latest"
            ),
        }
        for name, value in derived.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)

    @property
    def batch_template(self) -> str:
        """The batch template spec that templates/build.sh publishes."""
        return f"gs://{self.dataflow_bucket}/templates/batch.json"

    @property
    def staging_dataset(self) -> str:
        """dbt's staging dataset on BigQuery (its generate_schema_name macro)."""
        return f"{self.dbt_dataset}_staging"

    @classmethod
    def from_variable(cls, value: str | Mapping[str, Any] | None) -> Settings:
        """Settings from the Variable's JSON (a string or already decoded); unknown keys are errors."""
        if value is None:
            raise SettingsError(f'set the Airflow Variable {VARIABLE!r}, e.g. {{"project_id": "my-project"}}')
        data = json.loads(value) if isinstance(value, str) else dict(value)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown keys in the Variable {VARIABLE!r}: {', '.join(unknown)}")
        if "alert_emails" in data:
            data["alert_emails"] = tuple(data["alert_emails"])
        return cls(**data)


def load() -> Settings:
    """Reads the Variable now: call it inside a task (at run time), never at DAG parse time."""
    from airflow.sdk import Variable

    return Settings.from_variable(Variable.get(VARIABLE, default=None))
