{#-
    Date and time arithmetic that keeps the argument's type on both warehouses (dbt's
    dateadd turns a BigQuery TIMESTAMP into a DATETIME, which no longer compares with one).
-#}
{% macro subtract_hours(timestamp_expression, hours) -%}
    {%- if target.type == 'bigquery' -%}
        timestamp_sub({{ timestamp_expression }}, interval {{ hours }} hour)
    {%- else -%}
        ({{ timestamp_expression }} - interval ({{ hours }}) hour)
    {%- endif -%}
{%- endmacro %}

{% macro subtract_days(date_expression, days) -%}
    {%- if target.type == 'bigquery' -%}
        date_sub({{ date_expression }}, interval {{ days }} day)
    {%- else -%}
        cast({{ date_expression }} - interval ({{ days }}) day as date)
    {%- endif -%}
{%- endmacro %}
