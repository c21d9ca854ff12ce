{#-
    The incremental predicate always holds for a real match (an order's date never moves
    later), and it lets DuckDB skip the row groups of older orders.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['order_id', 'line_number'],
        incremental_predicates=['DBT_INTERNAL_DEST.order_date >= DBT_INTERNAL_SOURCE.order_date'],
        on_schema_change='append_new_columns',
        partition_by=bigquery_partition('order_date'),
        cluster_by=bigquery_cluster(['product_category']),
    )
}}

with

placements as (

    select * from {{ ref('stg_ecommerce__events') }}
    where
        event_type = 'order_placed'
        {% if is_incremental() %}
            and ingested_at > {{ incremental_watermark('ingested_at') }}
        {% endif %}

),

lines as (

    {{ order_lines('placements') }}

),

final as (

    select
        order_id,
        line_number,
        product_id,
        product_category,
        unit_price,
        quantity,
        round(unit_price * quantity, 2) as line_revenue,
        event_date as order_date,
        currency,
        ingested_at

    from lines

)

select * from final
{{ physical_order(['ingested_at', 'order_date']) }}
