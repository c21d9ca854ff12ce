"""The setup documents against what they describe: Metabase's starter SQL against the dbt marts,
and every `make` target the docs name against the Makefile."""

from __future__ import annotations

import re

import pytest
import yaml
from sqlfluff.core import Linter

from tests.deploy.conftest import REPO

DOCS = REPO / "docs"
MARTS = REPO / "dbt" / "models" / "marts"
STARTER_SQL = re.findall(r"```sql\n(.*?)```", (DOCS / "SETUP_METABASE.md").read_text(), flags=re.S)


def mart_columns() -> dict[str, set[str]]:
    """{model: its documented columns} for every mart dbt builds."""
    columns: dict[str, set[str]] = {}
    for path in MARTS.rglob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            columns[model["name"]] = {column["name"] for column in model.get("columns", [])}
    return columns


def test_there_are_the_five_starter_questions() -> None:
    assert len(STARTER_SQL) == 5


@pytest.mark.parametrize("sql", STARTER_SQL, ids=lambda sql: re.search(r"FROM (\S+)", sql).group(1))
def test_starter_question_parses_and_names_only_existing_marts_and_columns(sql: str) -> None:
    parsed = Linter(dialect="bigquery").parse_string(sql)
    assert not parsed.violations and "unparsable" not in parsed.tree.type_set(), parsed.violations
    marts = mart_columns()
    tables = [segment.raw for segment in parsed.tree.recursive_crawl("table_reference")]
    known = set()
    for table in tables:
        dataset, _, model = table.partition(".")
        assert dataset == "analytics_marts" and model in marts, table
        assert list(MARTS.rglob(f"{model}.sql")), f"{model} has no model file"
        known |= marts[model]
    aliases = {segment.raw.split()[-1] for segment in parsed.tree.recursive_crawl("alias_expression")}
    for reference in parsed.tree.recursive_crawl("column_reference"):
        column = reference.raw.split(".")[-1]
        assert column in known | aliases, f"{reference.raw} is not a column of {tables}"


def test_make_targets_named_in_the_docs_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([\w./$()-]+):", makefile, flags=re.M))
    targets = {t.replace("$(BIN)", ".venv/bin").replace("$(TOOLS_VENV)", ".venv-tools") for t in targets}
    for doc in DOCS.glob("*.md"):
        for target in re.findall(r"`make ([\w./-]+)`|^make ([\w./-]+)", doc.read_text(), flags=re.M):
            name = next(t for t in target if t)
            assert name in targets, f"{doc.name}: make {name}"
