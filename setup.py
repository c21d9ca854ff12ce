"""beam-ecommerce: installable with pip, and as Beam's ``--setup_file`` for Dataflow workers."""

import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

VERSION = re.search(r'__version__ = "([^"]+)"', Path("beam_ecommerce/__init__.py").read_text()).group(1)

# What the pipelines need at run time, on the launcher and on every worker.
INSTALL_REQUIRES = [
    "apache-beam[gcp]==2.77.0",
    "duckdb==2.0.1",
    "fastjsonschema==2.22.3",
    "msgspec==0.22.0",
    "orjson==3.13.0",
    "pyarrow==25.0.1",
    "Faker==40.63.0",
    "tqdm==4.70.1",
]

# The rest of the local platform: dbt on the DuckDB warehouse and the dashboard. Kept out
# of the pipelines' requirements so that Dataflow workers do not install them.
LOCAL_REQUIRES = [
    "dbt-core==1.11.16",
    "dbt-duckdb==1.11.1",
    "plotly==7.1.0",
]

TEST_REQUIRES = [
    "apache-beam[gcp,test]==2.77.0",
    "hypothesis==6.148.3",
    "jsonschema==4.26.0",
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",
    "python-hcl2==8.1.4",
    "selenium==4.51.0",
    "dbt-bigquery==1.12.1",
    "sqlfluff==4.5.0",
    # The GCS JSON API in memory: the offline Dataflow submission stages to it (tests/deploy).
    "gcp-storage-emulator==2026.7.19",
]


class BuildPyWithDbtProject(build_py):
    """Copies the repository's dbt project (``dbt/``) into the built package as ``beam_ecommerce/dbt``.

    A wheel then carries the models, macros, seeds, tests and profile that
    ``beam_ecommerce.dbt_project`` runs; an editable install uses ``dbt/`` itself.
    dbt's state and local warehouses are left out.
    """

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            target = Path(self.build_lib) / "beam_ecommerce" / "dbt"
            shutil.rmtree(target, ignore_errors=True)  # a model deleted since the last build must not ship
            shutil.copytree(
                "dbt",
                target,
                ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "warehouse", "*.duckdb*", ".user.yml"),
                dirs_exist_ok=True,
            )


setup(
    name="beam-ecommerce",
    cmdclass={"build_py": BuildPyWithDbtProject},
    version=VERSION,
    description="E-commerce analytics on Apache Beam: one transform core for batch and streaming, "
    "a local DuckDB warehouse and BigQuery.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: OS Independent",
        "Topic :: Database",
    ],
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["beam_ecommerce", "beam_ecommerce.*"]),
    package_data={
        "beam_ecommerce.schemas": ["jsonschema/*.json", "bigquery/*.json"],
        "beam_ecommerce.dashboard": ["page.html"],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={"local": LOCAL_REQUIRES, "test": LOCAL_REQUIRES + TEST_REQUIRES},
    entry_points={"console_scripts": ["beam-ecommerce=beam_ecommerce.cli:main"]},
)
