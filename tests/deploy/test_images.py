"""The container images and the build around them, checked statically (no Docker here).

hadolint lints every Dockerfile; the rest checks that every base image is pinned and
that the versions agree with what the package and the Airflow environment pin.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from beam_ecommerce.generator.destination import NAME_PREFIX, landing_bucket, platform_topic
from templates.launcher import TEMPLATES
from tests.deploy.conftest import REPO, resources, run_tool

TEMPLATE_DOCKERFILE = REPO / "templates" / "Dockerfile"
GENERATOR_DOCKERFILE = REPO / "templates" / "generator" / "Dockerfile"
AIRFLOW_DOCKERFILE = REPO / "airflow_dags" / "Dockerfile"
DOCKERFILES = (TEMPLATE_DOCKERFILE, GENERATOR_DOCKERFILE, AIRFLOW_DOCKERFILE)
SETUP_PY = (REPO / "setup.py").read_text()


def newest_python() -> tuple[str, str]:
    """The newest Python setup.py supports: its last version classifier, inside python_requires."""
    versions = re.findall(r'"Programming Language :: Python :: (\d+)\.(\d+)"', SETUP_PY)
    newest = max(versions, key=lambda v: (int(v[0]), int(v[1])))
    below = re.search(r'python_requires=">=[\d.]+,<(\d+)\.(\d+)"', SETUP_PY).groups()
    assert (int(newest[0]), int(newest[1]) + 1) == (int(below[0]), int(below[1])), "classifiers and python_requires"
    return newest


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def images(dockerfile: Path) -> list[str]:
    """Every image the Dockerfile pulls: FROM lines (not earlier stages) and COPY --from."""
    stages, pulled = set(), []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            image, *alias = rest.split(" AS ")
            if image.strip() not in stages:
                pulled.append(image.strip())
            if alias:
                stages.add(alias[0].strip())
        elif keyword == "COPY" and "--from=" in rest:
            source = re.search(r"--from=(\S+)", rest).group(1)
            if source not in stages:
                pulled.append(source)
    return pulled


def pinned(requirement: str, text: str) -> str:
    match = re.search(rf'"?{re.escape(requirement)}(?:\[[^\]]*\])?==([^"\s]+)', text)
    assert match, f"{requirement} is not pinned"
    return match.group(1)


def test_hadolint_passes_on_every_dockerfile() -> None:
    result = run_tool("hadolint", *map(str, DOCKERFILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_on_the_build_script() -> None:
    result = run_tool("shellcheck", "templates/build.sh")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_pulled_image_has_an_exact_tag() -> None:
    for dockerfile in DOCKERFILES:
        for image in images(dockerfile):
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and "$" not in image, f"{dockerfile.name}: {image} is not pinned"
            # A tag with a version number, not a moving major (python:3.11-slim would move).
            assert re.search(r"\d+\.\d+\.\d+|_RC\d+|\d{8}", tag), f"{dockerfile.name}: {image} moves"


def test_template_image_versions_agree_with_setup_py() -> None:
    """The newest supported Python, its Beam SDK and its launcher: one Python across the image."""
    python = newest_python()
    beam = pinned("apache-beam", SETUP_PY)
    base, sdk, launcher = images(TEMPLATE_DOCKERFILE)
    assert re.fullmatch(rf"python:{python[0]}\.{python[1]}\.\d+-slim-\w+", base)
    assert sdk == f"apache/beam_python{python[0]}.{python[1]}_sdk:{beam}"
    assert launcher.startswith(f"gcr.io/dataflow-templates-base/python{python[0]}{python[1]}-template-launcher-base:")


def test_template_image_is_both_launcher_and_worker_for_every_template() -> None:
    steps = instructions(TEMPLATE_DOCKERFILE)
    text = " ".join(f"{k} {v}" for k, v in steps)
    assert ("ENTRYPOINT", '["/opt/apache/beam/boot"]') in steps
    assert "/opt/google/dataflow/python_template_launcher" in text
    lock = f"requirements/constraints-{'.'.join(newest_python())}.txt"
    assert f"--constraint {lock} . && pip check" in text and (REPO / lock).is_file()
    stages = re.findall(r"FROM worker AS (\w+)", text)
    assert sorted(stages) == sorted(TEMPLATES)
    for name in TEMPLATES:
        script = f"/template/templates/{name}/main.py"
        assert f"FROM worker AS {name} ARG IMAGE ENV FLEX_TEMPLATE_PYTHON_PY_FILE={script}" in text
        assert (REPO / "templates" / name / "main.py").exists()
    assert text.count("BEAM_ECOMMERCE_SDK_CONTAINER_IMAGE=${IMAGE}") == len(TEMPLATES)


def test_cloud_build_builds_and_pushes_every_template() -> None:
    build = yaml.safe_load((REPO / "templates" / "cloudbuild.yaml").read_text())
    targets = [next(a.split("=", 1)[1] for a in step["args"] if a.startswith("--target=")) for step in build["steps"]]
    assert sorted(targets) == sorted(TEMPLATES)
    assert sorted(build["images"]) == sorted(f"${{_REGISTRY}}/{name}:${{_TAG}}" for name in TEMPLATES)
    for step in build["steps"]:
        assert re.fullmatch(r"gcr\.io/cloud-builders/docker:\d+\.\d+\.\d+", step["name"])
    script = (REPO / "templates" / "build.sh").read_text()
    assert f"for template in {' '.join(TEMPLATES)}; do" in script


def test_build_script_reads_only_existing_terraform_outputs(terraform) -> None:
    script = (REPO / "templates" / "build.sh").read_text()
    outputs = {name for parsed in terraform.values() for block in parsed.get("output", []) for name in block}
    used = set(re.findall(r"tf_output (\w+)", script))
    assert used and used <= outputs, used - outputs


def test_airflow_image_matches_the_airflow_environment() -> None:
    requirements = (REPO / "airflow_dags" / "requirements.txt").read_text()
    (base,) = images(AIRFLOW_DOCKERFILE)
    assert base == f"apache/airflow:{pinned('apache-airflow', requirements)}-python3.11"
    compose = yaml.safe_load((REPO / "airflow_dags" / "docker-compose.yaml").read_text())
    airflow = compose["services"]["airflow"]
    assert airflow["build"]["dockerfile"] == "airflow_dags/Dockerfile"
    assert all(port.startswith("127.0.0.1:") for port in airflow["ports"]), "local Airflow must not listen publicly"
    assert "ports" not in compose["services"]["postgres"]
    for image in (service["image"] for service in compose["services"].values() if "image" in service):
        assert re.search(r":\d+\.\d+", image), f"{image} is not pinned"


def test_generator_image_runs_the_generate_command_on_the_template_images_python() -> None:
    """The seed's `docker run ... ecommerce-generator ARGS` is `beam-ecommerce generate ARGS`."""
    steps = instructions(GENERATOR_DOCKERFILE)
    text = " ".join(f"{k} {v}" for k, v in steps)
    assert ("ENTRYPOINT", '["beam-ecommerce", "generate"]') in steps
    assert '"beam-ecommerce=beam_ecommerce.cli:main"' in SETUP_PY
    assert images(GENERATOR_DOCKERFILE) == images(TEMPLATE_DOCKERFILE)[:1], "the same Python as the template image"
    lock = f"requirements/constraints-{'.'.join(newest_python())}.txt"
    assert f"pip install --no-cache-dir --constraint {lock} . && pip check" in text
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users and users[-1].isdigit() and users[-1] != "0", "the generator runs as a numeric, non-root user"


def test_every_image_gets_exactly_the_files_it_copies() -> None:
    """Each COPY source is let through by the Dockerfile's .dockerignore (BuildKit reads DOCKERFILE.dockerignore)."""
    for dockerfile in (TEMPLATE_DOCKERFILE, GENERATOR_DOCKERFILE):
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
        allowed = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
        assert ignore[1] == "*", "everything is ignored unless let through"
        for keyword, rest in instructions(dockerfile):
            if keyword == "COPY" and "--from=" not in rest:
                *sources, _ = rest.split()
                assert set(sources) <= allowed, f"{dockerfile}: {set(sources) - allowed} is not sent to the build"
                assert all((REPO / source).exists() for source in sources)


def test_generator_names_are_terraforms(terraform) -> None:
    """The topic the image publishes to and the bucket it uploads to are the ones terraform/ creates."""
    variables = {
        name: body
        for parsed in terraform.values()
        for block in parsed.get("variable", [])
        for name, body in block.items()
    }
    assert variables["name_prefix"]["default"] == NAME_PREFIX
    topic = resources(terraform, "google_pubsub_topic")["events"]["name"]
    assert platform_topic("p") == f"projects/p/topics/{topic.replace('${var.name_prefix}', NAME_PREFIX)}"
    bucket = resources(terraform, "google_storage_bucket")["this"]["name"]
    buckets = {
        name for parsed in terraform.values() for block in parsed.get("locals", []) for name in block.get("buckets", {})
    }
    assert "landing" in buckets
    expected = (
        bucket.replace("${var.project_id}", "p")
        .replace("${var.name_prefix}", NAME_PREFIX)
        .replace("${each.key}", "landing")
    )
    assert landing_bucket("p") == expected
