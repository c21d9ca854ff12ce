"""dbt's ``target`` as sqlfluff's Jinja templater sees it: the local DuckDB target."""

type = "duckdb"  # noqa: A001 - the attribute dbt's target has
schema = "main"
name = "local"
