{#- Says which warehouse a run opened: on the local target the DuckDB file, as an absolute
    path (a relative `path` in profiles.yml depends on the directory dbt runs in). -#}
{% macro report_warehouse() %}
    {% if execute and target.type == 'duckdb' %}
        {% set opened = run_query("select path from duckdb_databases() where database_name = current_database()") %}
        {{ log("warehouse: " ~ opened.columns[0].values()[0], info=True) }}
    {% endif %}
{% endmacro %}
