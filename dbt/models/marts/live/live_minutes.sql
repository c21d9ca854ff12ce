{#-
    A view, so that every query sees what the stream has upserted by then. Built on
    BigQuery only, where Metabase reads it (the table is Terraform's, so it exists before
    any stream runs); the local dashboard reads main.live_metrics itself, which a
    batch-only warehouse does not have.
-#}
{{ config(materialized='view', enabled=target.type == 'bigquery') }}

with

panes as (

    select * from {{ source('ecommerce', 'live_metrics') }}
    where window_start >= current_timestamp - interval 1 hour

),

live as (

    -- The table logs every pane; a minute's figure for a key is its newest pane.
    select * from panes
    qualify
        row_number() over (
            partition by window_start, product_category, currency
            order by pane_index desc, emitted_at desc
        ) = 1

),

rates as (

    select * from {{ ref('exchange_rates') }}

),

final as (

    select
        live.window_start as minute_start,
        sum(live.orders) as orders,
        round(sum(live.gross_revenue / rates.units_per_eur), 2) as revenue_eur,
        sum(live.events) as events,
        round(sum(live.events) / 60.0, 2) as events_per_second,
        sum(live.dead_letters) as dead_letters,
        -- 1 once the watermark has closed the minute (an on-time or late pane wrote it)
        max(case when live.pane_timing = 'EARLY' then 0 else 1 end) as is_closed

    from live
    left join rates on live.currency = rates.currency
    group by live.window_start

)

select * from final
