{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='user_id',
        on_schema_change='append_new_columns',
        cluster_by=bigquery_cluster(['user_id']),
    )
}}

-- Each CTE reads the facts with its own filter: DuckDB materializes a CTE read twice.
with

exchange_rates as (

    select * from {{ ref('exchange_rates') }}

),

{% if is_incremental() %}

    new_sessions as (

        select * from {{ ref('fct_sessions') }}
        where last_ingested_at > {{ incremental_watermark('last_ingested_at') }}

    ),

    affected_users as (

        select new_sessions.user_id from new_sessions
        union distinct
        select orders.user_id from {{ ref('fct_orders') }} as orders
        where orders.last_ingested_at > {{ incremental_watermark('last_ingested_at') }}

    ),

    sightings as (

        -- What is known of each affected user: the new visits, and the user's row so far
        -- (first and latest visit), so that no old session needs to be read again.
        select
            user_id,
            started_at as first_seen_at,
            started_at as last_seen_at,
            country,
            signup_channel,
            last_ingested_at
        from new_sessions
        union all
        select
            user_id,
            first_seen_at,
            last_seen_at,
            country,
            signup_channel,
            last_ingested_at
        from {{ this }}
        where user_id in (select affected_users.user_id from affected_users)

    ),

    user_orders as (

        select * from {{ ref('fct_orders') }}
        where user_id in (select affected_users.user_id from affected_users)

    ),

{% else %}

    sightings as (

        select
            user_id,
            started_at as first_seen_at,
            started_at as last_seen_at,
            country,
            signup_channel,
            last_ingested_at
        from {{ ref('fct_sessions') }}

    ),

    user_orders as (

        select * from {{ ref('fct_orders') }}

    ),

{% endif %}

latest_sightings as (

    -- country and signup channel as of the user's latest visit
    select
        user_id,
        country,
        signup_channel,
        row_number() over (
            partition by user_id order by last_seen_at desc
        ) as recency
    from sightings

),

seen as (

    select
        user_id,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        max(last_ingested_at) as last_ingested_at
    from sightings
    group by user_id

),

lifetime as (

    select
        user_orders.user_id,
        count(*) as lifetime_orders,
        round(
            sum(user_orders.net_revenue / exchange_rates.units_per_eur), 2
        ) as lifetime_revenue_eur,
        max(user_orders.last_ingested_at) as last_ingested_at
    from user_orders
    left join exchange_rates on user_orders.currency = exchange_rates.currency
    group by user_orders.user_id

),

final as (

    select
        seen.user_id,
        seen.first_seen_at,
        seen.last_seen_at,
        latest_sightings.country,
        latest_sightings.signup_channel,
        coalesce(lifetime.lifetime_orders, 0) as lifetime_orders,
        coalesce(lifetime.lifetime_revenue_eur, 0) as lifetime_revenue_eur,
        greatest(
            seen.last_ingested_at,
            coalesce(lifetime.last_ingested_at, seen.last_ingested_at)
        ) as last_ingested_at

    from seen
    inner join latest_sightings
        on seen.user_id = latest_sightings.user_id and latest_sightings.recency = 1
    left join lifetime on seen.user_id = lifetime.user_id

)

select * from final
