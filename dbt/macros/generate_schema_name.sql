{#-
    Where a model lands. Locally (DuckDB) a custom schema is used as is: the models land in
    `staging` and `marts`, the names the dashboard reads. On BigQuery, where a schema is a
    dataset shared by a project's users, dbt's default applies: `<target dataset>_staging`
    and `<target dataset>_marts`, so that each developer's or environment's target dataset
    keeps its own pair.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif target.type == 'bigquery' -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
