{#-
    The latest value of `column` in this model (the incremental watermark), less
    `ingest_lookback_hours`; 1970 for an empty model.

    Written as "order by ... desc limit 1" rather than max(): DuckDB answers it from the
    last row group's statistics instead of scanning the whole column; BigQuery reads the
    column either way.
-#}
{% macro incremental_watermark(column) -%}
    {%- set latest -%}
        coalesce(
            (select {{ column }} from {{ this }} order by {{ column }} desc limit 1),
            cast('1970-01-01 00:00:00' as timestamp)
        )
    {%- endset -%}
    {{ subtract_hours(latest, var('ingest_lookback_hours')) }}
{%- endmacro %}


{#-
    Partitioning and clustering on BigQuery, nothing elsewhere: dbt-duckdb rejects
    BigQuery's partition_by dict. `partition_field` is a DATE column.
-#}
{% macro bigquery_partition(partition_field) -%}
    {%- if target.type == 'bigquery' -%}
        {{ return({'field': partition_field, 'data_type': 'date', 'granularity': 'day'}) }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{% macro bigquery_cluster(fields) -%}
    {{ return(fields if target.type == 'bigquery' else none) }}
{%- endmacro %}


{#-
    Sorts the rows a model writes, on DuckDB only: rows stored in ingestion order keep the
    min/max statistics of each row group tight, so an incremental run's filter on
    ingested_at or a date skips the old row groups. BigQuery's partitioning and clustering
    do that job there, and a sort of a whole table would only cost slots.
-#}
{% macro physical_order(columns) -%}
    {%- if target.type == 'duckdb' %}
        order by {{ columns | join(', ') }}
    {%- endif -%}
{%- endmacro %}
