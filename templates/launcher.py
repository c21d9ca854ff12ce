"""What a Flex Template launcher does before it hands the job to Dataflow.

Dataflow starts the template's container, runs ``FLEX_TEMPLATE_PYTHON_PY_FILE`` with every
template parameter as ``--name=value`` (plus the runner, project, region and temp location),
and expects the script to submit the job and return. Each template's ``main.py`` calls
:func:`launch` with its :class:`Template`; the pipelines themselves live in the package.

The template declares which ``PipelineOptions`` classes it exposes: ``metadata.json`` must
list exactly their options (``tests/deploy/test_flex_templates.py`` checks both ways), so an
option added to the package fails the tests until the template documents it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult

from beam_ecommerce.pipelines import batch, streaming
from beam_ecommerce.pipelines.options import BIGQUERY, BatchOptions, RunOptions
from beam_ecommerce.pipelines.streaming import StreamingOptions
from beam_ecommerce.transforms import RunContext

_LOGGER = logging.getLogger(__name__)

# Set by the image build (templates/Dockerfile) to the image's own name and tag, so the
# workers run the very image the launcher ran in without a sdk_container_image parameter.
SDK_IMAGE_ENV = "BEAM_ECOMMERCE_SDK_CONTAINER_IMAGE"


@dataclass(frozen=True)
class Template:
    """One Flex Template: the pipeline it launches, the options it exposes and its defaults."""

    name: str
    build_pipeline: Callable[[PipelineOptions], tuple[beam.Pipeline, RunContext]]
    option_classes: tuple[type[PipelineOptions], ...]
    # Put in front of the launch arguments, so a parameter the user gives wins over them.
    defaults: Mapping[str, str] = field(default_factory=dict)


# A template runs on Dataflow, where only the BigQuery sink makes sense.
_CLOUD_DEFAULTS = {"sink": BIGQUERY}

BATCH = Template(
    name="batch",
    build_pipeline=batch.build_pipeline,
    option_classes=(RunOptions, BatchOptions),
    defaults=_CLOUD_DEFAULTS,
)
STREAMING = Template(
    name="streaming",
    build_pipeline=streaming.build_pipeline,
    option_classes=(RunOptions, StreamingOptions),
    # Spreads the dedupe state over Dataflow's workers (1, the command line's default, suits one process).
    defaults={**_CLOUD_DEFAULTS, "dedupe_shards": "64"},
)
TEMPLATES: Mapping[str, Template] = {t.name: t for t in (BATCH, STREAMING)}


def launch_argv(template: Template, argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The arguments the pipeline is built from: the template's defaults, then what Dataflow passed.

    The image carries the Beam SDK, so workers use it (``sdk_location=container``) instead of
    downloading and installing the SDK at start-up.
    """
    defaults = {"sdk_location": "container", **template.defaults}
    if environ.get(SDK_IMAGE_ENV):
        defaults["sdk_container_image"] = environ[SDK_IMAGE_ENV]
    return [f"--{name}={value}" for name, value in defaults.items()] + list(argv)


def launch(template: Template, argv: Sequence[str]) -> PipelineResult:
    """Builds ``template``'s pipeline from the launch arguments and submits it, without waiting."""
    options = PipelineOptions(launch_argv(template, argv, os.environ))
    pipeline, context = template.build_pipeline(options)
    _LOGGER.info("Submitting the %s pipeline, run_id=%s", template.name, context.run_id)
    return pipeline.run()
