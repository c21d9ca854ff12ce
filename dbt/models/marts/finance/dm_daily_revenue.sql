{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['revenue_date', 'product_category', 'currency'],
        on_schema_change='append_new_columns',
        partition_by=bigquery_partition('revenue_date'),
        cluster_by=bigquery_cluster(['product_category', 'currency']),
    )
}}

-- Each CTE reads fct_orders with its own filter: DuckDB materializes a CTE read twice.
with

exchange_rates as (

    select * from {{ ref('exchange_rates') }}

),

{% if is_incremental() %}

    changed_dates as (

        select distinct order_date from {{ ref('fct_orders') }}
        where last_ingested_at > {{ incremental_watermark('last_ingested_at') }}

    ),

    day_orders as (

        -- Order dates with a new or changed order (a late refund, say) are recounted whole.
        select * from {{ ref('fct_orders') }}
        where
            order_date in (select changed_dates.order_date from changed_dates)
            and order_date >= (select min(changed_dates.order_date) from changed_dates)

    ),

{% else %}

    day_orders as (

        select * from {{ ref('fct_orders') }}

    ),

{% endif %}

summed as (

    select
        order_date as revenue_date,
        product_category,
        currency,
        count(*) as orders,
        count(case when is_cancelled then 1 end) as cancelled_orders,
        count(case when is_refunded and not is_cancelled then 1 end) as refunded_orders,
        -- a cancelled order is no revenue: it is counted and its value reported apart
        round(
            sum(case when is_cancelled then 0 else gross_revenue end), 2
        ) as gross_revenue,
        round(
            sum(case when is_cancelled then gross_revenue else 0 end), 2
        ) as cancelled_revenue,
        round(
            sum(case when is_cancelled then 0 else refunded_amount end), 2
        ) as refunds,
        max(last_ingested_at) as last_ingested_at
    from day_orders
    group by order_date, product_category, currency

),

final as (

    select
        summed.revenue_date,
        summed.product_category,
        summed.currency,
        summed.gross_revenue,
        summed.refunds,
        round(summed.gross_revenue - summed.refunds, 2) as net_revenue,
        round(
            (summed.gross_revenue - summed.refunds) / exchange_rates.units_per_eur, 2
        ) as net_revenue_eur,
        summed.orders,
        summed.cancelled_orders,
        summed.refunded_orders,
        summed.cancelled_revenue,
        round(
            summed.gross_revenue / nullif(summed.orders - summed.cancelled_orders, 0), 2
        ) as average_order_value,
        summed.last_ingested_at

    from summed
    left join exchange_rates on summed.currency = exchange_rates.currency

)

select * from final
