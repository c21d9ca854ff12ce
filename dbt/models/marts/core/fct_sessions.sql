{#-
    The incremental predicate always holds for a real match (a visit's date can only move
    earlier), and it lets DuckDB skip the row groups of older visits instead of reading
    every key of the model.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='session_id',
        incremental_predicates=['DBT_INTERNAL_DEST.session_date >= DBT_INTERNAL_SOURCE.session_date'],
        on_schema_change='append_new_columns',
        partition_by=bigquery_partition('session_date'),
        cluster_by=bigquery_cluster(['user_id']),
    )
}}

-- A visit is what the user did: an order's later status changes carry the session the
-- order was placed in but happen in the back office, days later, and are left out.
-- Each CTE reads staging with its own filter: DuckDB materializes a CTE read twice.
with

{% if is_incremental() %}

    new_visit_events as (

        select
            session_id,
            event_date
        from {{ ref('stg_ecommerce__events') }}
        where
            event_type != 'order_status_changed'
            and ingested_at > {{ incremental_watermark('last_ingested_at') }}

    ),

    session_events as (

        -- Every event of each visit with a new event, from the day before the earliest
        -- new one (session_lookback_days): visits are recomputed whole.
        select * from {{ ref('stg_ecommerce__events') }}
        where
            event_type != 'order_status_changed'
            and session_id in (select new_visit_events.session_id from new_visit_events)
            and event_date >= (
                select
                    {{ subtract_days(
                        'min(new_visit_events.event_date)', var('session_lookback_days')
                    ) }}
                from new_visit_events
            )

    ),

{% else %}

    session_events as (

        select * from {{ ref('stg_ecommerce__events') }}
        where event_type != 'order_status_changed'

    ),

{% endif %}

numbered as (

    select
        *,
        row_number() over (
            partition by session_id order by occurred_at, event_id
        ) as event_number
    from session_events

),

first_events as (

    select
        session_id,
        user_id,
        event_date as session_date,
        country,
        signup_channel,
        device,
        page_url as landing_page_url,
        referrer_url
    from numbered
    where event_number = 1

),

activity as (

    select
        session_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as events,
        count(case when event_type = 'page_view' then 1 end) as page_views,
        count(case when event_type = 'add_to_cart' then 1 end) as add_to_carts,
        count(case when event_type = 'order_placed' then 1 end) as orders,
        count(
            case
                when event_type = 'payment' and payment_status = 'succeeded' then 1
            end
        ) as payments,
        count(
            case
                when event_type = 'payment' and payment_status = 'failed' then 1
            end
        ) as failed_payments,
        max(ingested_at) as last_ingested_at
    from session_events
    group by session_id

),

final as (

    select
        first_events.session_id,
        first_events.user_id,
        first_events.session_date,
        activity.started_at,
        activity.ended_at,
        activity.events,
        activity.page_views,
        activity.add_to_carts,
        activity.orders,
        activity.payments,
        activity.failed_payments,
        first_events.country,
        first_events.signup_channel,
        first_events.device,
        first_events.landing_page_url,
        first_events.referrer_url,
        activity.last_ingested_at

    from first_events
    inner join activity on first_events.session_id = activity.session_id

)

select * from final
{{ physical_order(['session_date', 'started_at']) }}
