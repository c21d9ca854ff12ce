"""The Flex Templates' metadata against the pipelines' options, and the launchers.

The option lists come from the PipelineOptions classes at test time, so an option added
to (or removed from) the package fails here until templates/*/metadata.json follows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
from typing import Any

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from google.cloud.dataflow_v1beta3.types import TemplateMetadata

import beam_ecommerce
from templates import launcher
from templates.launcher import TEMPLATES, Template
from tests.deploy.conftest import REPO

# One value each regex must refuse; a new parameter with regexes needs an entry here.
INVALID_EXAMPLES: dict[str, str] = {
    "input": "/local/path/events-*.jsonl",
    "input_subscription": "projects/my-project/topics/events",
    "input_topic": "events",
    "bigquery_dataset": "my-project.ecommerce",
    "dead_letter_dir": "s3://bucket/dead-letter",
    "pii_hash_key_secret": "pii-hash-key",
    "pii_hash_key": "short key",
    "run_id": "run id with spaces",
    "batch_size": "0",
    "split_bytes": "64MB",
    "max_record_bytes": "10MiB",
    "allowed_lateness_seconds": "-1",
    "dedupe_horizon_seconds": "2h",
    "dedupe_shards": "0",
    "dead_letter_topic": "projects/my-project/subscriptions/dead-letters",
    "sink": "duckdb",
    "input_format": "parquet",
    "duckdb_memory_limit": "lots",
    "warehouse_lock_timeout_seconds": "2m",
    "core": "faster",
    "local_workers": "0",
}


# Options classes of pipelines that have no template, each with the reason.
NOT_TEMPLATED: dict[str, str] = {
    "beam_ecommerce.pipelines.replay.ReplayOptions": "the replay pipeline records replays in the local DuckDB "
    "warehouse (its `replayed` table); it is run from the command line, not deployed as a template",
}


def metadata(template: Template) -> dict[str, Any]:
    return json.loads((REPO / "templates" / template.name / "metadata.json").read_text())


def parameters(template: Template) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in metadata(template)["parameters"]}


def option_actions(template: Template) -> dict[str, argparse.Action]:
    """Every option the template's PipelineOptions classes declare, as argparse sees it."""
    parser = argparse.ArgumentParser()
    for options_class in template.option_classes:
        options_class._add_argparse_args(parser)
    return {action.dest: action for action in parser._actions if action.dest != "help"}


def example(parameter: dict[str, Any]) -> str:
    """The value the help text gives after "Example:" (documentation and test in one)."""
    match = re.search(r"Example: (\S+)$", parameter["helpText"])
    assert match, f"{parameter['name']}: helpText must end with 'Example: VALUE'"
    return match.group(1)


ALL = pytest.mark.parametrize("template", list(TEMPLATES.values()), ids=list(TEMPLATES))


@ALL
def test_metadata_is_a_valid_template_metadata_message(template: Template) -> None:
    # Dataflow's own proto, strictly: an unknown or misspelt field fails.
    parsed = TemplateMetadata.from_json((REPO / "templates" / template.name / "metadata.json").read_text())
    assert parsed.name and parsed.description
    for parameter in parsed.parameters:
        assert parameter.label and parameter.help_text, parameter.name


@ALL
def test_every_option_is_a_parameter_and_every_parameter_an_option(template: Template) -> None:
    assert set(parameters(template)) == set(option_actions(template))


def test_every_options_class_of_the_package_belongs_to_a_template() -> None:
    for module in pkgutil.walk_packages(beam_ecommerce.__path__, "beam_ecommerce."):
        if not module.name.endswith(".__main__"):  # a __main__ runs its command when imported
            importlib.import_module(module.name)

    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct} | subclasses(direct)}

    ours = {
        f"{c.__module__}.{c.__qualname__}"
        for c in subclasses(PipelineOptions)
        if c.__module__.startswith("beam_ecommerce.")
    }
    claimed = {f"{c.__module__}.{c.__qualname__}" for template in TEMPLATES.values() for c in template.option_classes}
    assert ours - claimed - set(NOT_TEMPLATED) == set(), (
        "add it to a Template in templates/launcher.py, its options to metadata"
    )
    assert set(NOT_TEMPLATED) <= ours, "NOT_TEMPLATED names a class that no longer exists"


@ALL
def test_parameter_types_defaults_and_choices_follow_the_options(template: Template) -> None:
    actions = option_actions(template)
    for name, parameter in parameters(template).items():
        action = actions[name]
        if action.choices:
            values = [option["value"] for option in parameter["enumOptions"]]
            assert set(values) <= set(action.choices), name
            for value in values:
                assert all(re.fullmatch(regex, value) for regex in parameter["regexes"]), (name, value)
        if action.type is int:
            assert parameter.get("paramType") == "NUMBER", name
            assert not any(re.fullmatch(regex, "abc") for regex in parameter["regexes"]), name
        if "defaultValue" in parameter:
            expected = template.defaults.get(name, action.default)
            assert parameter["defaultValue"] == str(expected), name
        if parameter.get("isOptional") is False:
            assert action.default is None or name in ("dead_letter_dir",), f"{name} is required but has a default"


@ALL
def test_every_regex_accepts_the_documented_example_and_rejects_a_bad_value(template: Template) -> None:
    for name, parameter in parameters(template).items():
        value = example(parameter)
        for regex in parameter.get("regexes", []):
            assert re.fullmatch(regex, value), (name, value, regex)
        if parameter.get("regexes"):
            assert name in INVALID_EXAMPLES, f"add an invalid example for {name}"
            bad = INVALID_EXAMPLES[name]
            assert not all(re.fullmatch(regex, bad) for regex in parameter["regexes"]), (name, bad)


def test_streaming_modes() -> None:
    streaming = metadata(TEMPLATES["streaming"])
    assert streaming["streaming"] is True
    # Re-sent and redelivered events are dropped by event_id, and dbt's staging keeps one
    # row per event_id: at-least-once delivery changes nothing downstream.
    assert streaming["supportsAtLeastOnce"] is True and streaming["supportsExactlyOnce"] is True
    batch = metadata(TEMPLATES["batch"])
    assert not any(key in batch for key in ("streaming", "supportsAtLeastOnce", "supportsExactlyOnce"))


def test_launch_arguments_put_template_defaults_first_so_parameters_win() -> None:
    argv = launcher.launch_argv(
        TEMPLATES["batch"], ["--sink=duckdb"], {launcher.SDK_IMAGE_ENV: "europe-docker.pkg.dev/p/r/batch:t"}
    )
    options = PipelineOptions(argv).get_all_options()
    assert options["sink"] == "duckdb"  # the user's value wins over the template default
    assert options["sdk_container_image"] == "europe-docker.pkg.dev/p/r/batch:t"
    assert options["sdk_location"] == "container"
    assert "sdk_container_image" not in PipelineOptions(
        launcher.launch_argv(TEMPLATES["batch"], [], {})
    ).get_all_options(drop_default=True)


# Launch parameters as Dataflow passes them (the documented examples); the pipelines are
# built, not run, so nothing reaches Google Cloud.
@ALL
def test_documented_parameters_build_the_pipeline(template: Template) -> None:
    chosen = {name: example(p) for name, p in parameters(template).items() if not p.get("isOptional")}
    if template.name == "streaming":
        chosen["input_subscription"] = example(parameters(template)["input_subscription"])
    chosen["pii_hash_key"] = example(parameters(template)["pii_hash_key"])
    argv = launcher.launch_argv(template, [f"--{k}={v}" for k, v in chosen.items()], {})
    pipeline, context = template.build_pipeline(PipelineOptions(argv))
    assert context.run_id
    transforms = {t.full_label for t in pipeline.transforms_stack[0].parts}
    assert transforms, "the pipeline has no transforms"


@ALL
def test_both_templates_require_cloud_dead_letters_and_a_key_or_secret(template: Template) -> None:
    dead_letter_dir = parameters(template)["dead_letter_dir"]
    assert dead_letter_dir["isOptional"] is False and "unused" not in dead_letter_dir["label"].lower()
    assert all(regex.startswith("^gs:") for regex in dead_letter_dir["regexes"])
    for name in ("pii_hash_key", "pii_hash_key_secret"):
        assert "refuses to start" in parameters(template)[name]["helpText"], name
