{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='funnel_date',
        on_schema_change='append_new_columns',
        partition_by=bigquery_partition('funnel_date'),
    )
}}

-- Each CTE reads fct_sessions with its own filter: DuckDB materializes a CTE read twice.
with

{% if is_incremental() %}

    changed_dates as (

        select distinct session_date from {{ ref('fct_sessions') }}
        where last_ingested_at > {{ incremental_watermark('last_ingested_at') }}

    ),

    day_sessions as (

        -- Days with a new or changed visit are recounted whole.
        select * from {{ ref('fct_sessions') }}
        where
            session_date in (select changed_dates.session_date from changed_dates)
            and session_date >= (select min(changed_dates.session_date) from changed_dates)

    ),

{% else %}

    day_sessions as (

        select * from {{ ref('fct_sessions') }}

    ),

{% endif %}

counted as (

    select
        session_date as funnel_date,
        count(*) as sessions,
        -- A strict funnel: a step counts the visits that also took every earlier step.
        count(case when page_views > 0 then 1 end) as sessions_with_view,
        count(
            case when page_views > 0 and add_to_carts > 0 then 1 end
        ) as sessions_with_cart,
        count(
            case when page_views > 0 and add_to_carts > 0 and orders > 0 then 1 end
        ) as sessions_with_order,
        count(
            case
                when page_views > 0 and add_to_carts > 0 and orders > 0 and payments > 0
                    then 1
            end
        ) as sessions_with_payment,
        max(last_ingested_at) as last_ingested_at
    from day_sessions
    group by session_date

),

final as (

    select
        funnel_date,
        sessions,
        sessions_with_view,
        sessions_with_cart,
        sessions_with_order,
        sessions_with_payment,
        round(sessions_with_cart / nullif(sessions_with_view, 0), 4) as view_to_cart_rate,
        round(sessions_with_order / nullif(sessions_with_cart, 0), 4) as cart_to_order_rate,
        round(
            sessions_with_payment / nullif(sessions_with_order, 0), 4
        ) as order_to_payment_rate,
        round(
            sessions_with_payment / nullif(sessions_with_view, 0), 4
        ) as view_to_payment_rate,
        last_ingested_at

    from counted

)

select * from final
