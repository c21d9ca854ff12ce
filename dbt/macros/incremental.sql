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


{#-
    The first event_date an incremental run reads from raw_events, as a date literal:
    the latest event_date already built into this model, less `raw_events_lookback_days`.
    A literal (not a subquery) is what lets BigQuery prune raw_events' day partitions, so
    an incremental run bills the last few days instead of the whole table. The latest day
    comes from BigQuery's partition metadata (no scan) or, elsewhere, from the model.

    Events older than the window that land late (a replay of old dead letters, a
    backfill) are left out of incremental runs: give the window for that run
    (--vars '{raw_events_since: "2026-01-01"}') or build with --full-refresh.
-#}
{% macro raw_events_since() -%}
    {%- set since = var('raw_events_since', none) -%}
    {%- if since is none and execute -%}
        {%- if target.type == 'bigquery' -%}
            {%- set latest_sql -%}
                select max(parse_date('%Y%m%d', partition_id))
                from `{{ this.database }}.{{ this.schema }}.INFORMATION_SCHEMA.PARTITIONS`
                where table_name = '{{ this.identifier }}'
                    and partition_id not in ('__NULL__', '__UNPARTITIONED__')
            {%- endset -%}
        {%- else -%}
            {%- set latest_sql = 'select max(event_date) from ' ~ this -%}
        {%- endif -%}
        {%- set latest = run_query(latest_sql).columns[0].values()[0] -%}
        {%- if latest is not none -%}
            {%- set since = (latest - modules.datetime.timedelta(days=var('raw_events_lookback_days'))).isoformat() -%}
        {%- endif -%}
    {%- endif -%}
    date '{{ since or '1970-01-01' }}'
{%- endmacro %}
