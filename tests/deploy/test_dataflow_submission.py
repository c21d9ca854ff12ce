"""A real Dataflow submission of both Flex Templates, offline.

What is real: each template's entry point (templates/NAME/main.py, the script the Flex
Template launcher runs in the image) runs in its own process with the arguments Dataflow
passes it, builds the pipeline and submits it with Beam's real ``DataflowRunner``: the
runner translates the graph to the runner-v2 pipeline proto, stages it with Beam's real
``gs://`` file system to gcp-storage-emulator (the GCS JSON API, in memory), and sends
the real ``projects.locations.jobs.create`` request.

What is played: the Dataflow service (tests/deploy/dataflow_service.py records the
job-create request and answers the job's state; nothing executes the job), and the
launcher's credentials (``--no_auth``, added here only: a real launch has the worker
service account's). What is not covered: Dataflow accepting the job, the workers
starting from the image, and Google's own launcher binary.

The assertions are on what Dataflow would receive: every transform of the pipeline is
in the staged proto, the options the template passes (sink, dead-letter prefix, PII
secret), the SDK container image, and no path of this machine anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2

from templates.launcher import TEMPLATES, launch_argv
from tests.deploy.conftest import REPO
from tests.deploy.dataflow_service import GcsEmulator, PlayedDataflow

pytestmark = pytest.mark.e2e

PROJECT = "my-project"
REGION = "europe-west1"
BUCKET = "my-project-dataflow"
IMAGE = "europe-docker.pkg.dev/my-project/beam-ecommerce/{name}:v1.2.3"
SECRET = f"projects/{PROJECT}/secrets/beam-ecommerce-pii-hash-key/versions/latest"
DEAD_LETTERS = f"gs://{BUCKET}/dead-letter/{{name}}"

# What each template is launched with: its required parameters (as the Airflow DAG and
# docs/SETUP_CICD.md pass them), then the state the played service reports.
PARAMETERS = {
    "batch": {"input": f"gs://{BUCKET}/landing/dt=2026-11-26/events-*", "bigquery_dataset": f"{PROJECT}:ecommerce"},
    "streaming": {
        "input_subscription": f"projects/{PROJECT}/subscriptions/beam-ecommerce-events",
        "bigquery_dataset": f"{PROJECT}:ecommerce",
    },
}
STATES = {"batch": "JOB_STATE_DONE", "streaming": "JOB_STATE_RUNNING"}


def parameters(name: str) -> list[str]:
    given = {**PARAMETERS[name], "dead_letter_dir": DEAD_LETTERS.format(name=name), "pii_hash_key_secret": SECRET}
    return [f"--{key}={value}" for key, value in given.items()]


def dataflow_arguments(endpoint: str) -> list[str]:
    """What Dataflow adds to the template parameters when it starts the launcher, plus the played endpoint."""
    return [
        "--runner=DataflowRunner",
        f"--project={PROJECT}",
        f"--region={REGION}",
        f"--temp_location=gs://{BUCKET}/tmp",
        f"--staging_location=gs://{BUCKET}/staging",
        f"--dataflow_endpoint={endpoint}",
        "--no_auth",
    ]


@pytest.fixture(scope="module")
def gcs():
    with GcsEmulator() as emulator:
        emulator.create_bucket(BUCKET)
        emulator.upload(BUCKET, "landing/dt=2026-11-26/events-0001.jsonl", b'{"event_type": "page_view"}\n')
        yield emulator


def submit(name: str, gcs: GcsEmulator, cwd) -> tuple[PlayedDataflow, str]:
    """Runs templates/NAME/main.py against the played service; returns it and the launcher's output."""
    with PlayedDataflow(STATES[name]) as dataflow:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "STORAGE_EMULATOR_HOST": gcs.host,
            "BEAM_ECOMMERCE_SDK_CONTAINER_IMAGE": IMAGE.format(name=name),
        }
        env.pop("BEAM_ECOMMERCE_PII_KEY", None)
        launched = subprocess.run(
            [sys.executable, str(REPO / "templates" / name / "main.py"), *dataflow_arguments(dataflow.endpoint)]
            + parameters(name),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert launched.returncode == 0, launched.stderr[-5000:]
    return dataflow, launched.stderr


def staged_pipeline(gcs: GcsEmulator, job: dict) -> beam_runner_api_pb2.Pipeline:
    url = job["environment"]["sdkPipelineOptions"]["options"]["pipelineUrl"]
    bucket, _, name = url.removeprefix("gs://").partition("/")
    return beam_runner_api_pb2.Pipeline.FromString(gcs.read(bucket, name))


def local_labels(name: str) -> set[str]:
    """Every transform of the template's pipeline as built (not run) from the same parameters.

    A composite that hands back its input unchanged (``Create``'s ``MaybeReshuffle`` of a
    single element) is no step of the job: it has nothing to translate.
    """
    template = TEMPLATES[name]
    pipeline, _ = template.build_pipeline(PipelineOptions(launch_argv(template, parameters(name), {})))
    labels: set[str] = set()

    def walk(node):
        if node.full_label and not set(node.outputs.values()) <= set(node.inputs):
            labels.add(node.full_label)
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return labels


@pytest.mark.parametrize("name", ["batch", "streaming"])
def test_the_template_submits_a_complete_job_with_its_options_and_image(name, gcs, tmp_path) -> None:
    dataflow, output = submit(name, gcs, tmp_path)
    assert len(dataflow.jobs) == 1, dataflow.requests
    assert dataflow.requests[0].startswith(f"POST /v1b3/projects/{PROJECT}/locations/{REGION}/jobs")
    (job,) = dataflow.jobs
    # Beam asks for enums as numbers: JOB_TYPE_BATCH = 1, JOB_TYPE_STREAMING = 2.
    assert job["type"] == (2 if name == "streaming" else 1)

    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["sink"] == "bigquery"
    assert options["dead_letter_dir"] == DEAD_LETTERS.format(name=name)
    assert options["pii_hash_key_secret"] == SECRET
    assert options.get("pii_hash_key") is None, "the key itself never travels with the job"
    assert options["sdk_container_image"] == IMAGE.format(name=name)
    assert options["sdk_location"] == "container"
    if name == "streaming":
        assert options["streaming"] is True and options["dedupe_shards"] == 64

    pipeline = staged_pipeline(gcs, job)
    translated = {transform.unique_name for transform in pipeline.components.transforms.values()}
    missing = local_labels(name) - translated
    assert not missing, f"not in the submitted pipeline: {sorted(missing)[:20]}"
    images = {
        beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image
        for environment in pipeline.components.environments.values()
        if environment.urn == "beam:env:docker:v1"
    }
    assert images == {IMAGE.format(name=name)}

    submitted = json.dumps(job) + pipeline.SerializeToString().decode("latin-1")
    for local in (str(tmp_path), str(REPO), os.path.expanduser("~") + "/", sys.prefix):
        at = submitted.find(local)
        assert at < 0, f"the job names a path of this machine: {submitted[max(0, at - 300) : at + 200]!r}"
    assert "Submitted job" in output


def test_the_batch_runner_waits_until_the_service_reports_the_job_done(gcs, monkeypatch) -> None:
    """The same submission in this process, then Beam's own wait: it polls the job until a terminal state."""
    from apache_beam.runners.runner import PipelineState

    from beam_ecommerce.pipelines import batch

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.host)
    with PlayedDataflow("JOB_STATE_DONE") as dataflow:
        argv = [*dataflow_arguments(dataflow.endpoint), "--sink=bigquery", *parameters("batch")]
        pipeline, _ = batch.build_pipeline(PipelineOptions(argv))
        result = pipeline.run()
        assert result.wait_until_finish() == PipelineState.DONE
    assert any(request.startswith("GET ") for request in dataflow.requests), dataflow.requests
