{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        partition_by=bigquery_partition('event_date'),
        cluster_by=bigquery_cluster(['event_type', 'order_id']),
    )
}}

{%- if is_incremental() %}{% set read_since = raw_events_since() %}{% endif %}

with

source as (

    select * from {{ source('ecommerce', 'raw_events') }}
    {% if is_incremental() %}
        -- The literal date bound prunes raw_events' partitions; the watermark picks the new rows.
        where event_date >= {{ read_since }}
            and ingested_at > {{ incremental_watermark('ingested_at') }}
    {% endif %}

),

numbered as (

    -- The pipeline already keeps one row per event_id; this keeps the marts right if a
    -- load ever did not (a re-sent event landing twice on BigQuery, say).
    select
        *,
        row_number() over (
            partition by event_id order by ingested_at, source
        ) as copy_number
    from source

),

renamed as (

    select
        -- ids
        event_id,
        user_id,
        session_id,
        order_id,
        product_id,
        payment_id,

        -- the event
        event_type,
        schema_version,
        occurred_at,
        event_date,

        -- the user and the visit (PII already pseudonymized by the pipeline)
        country,
        signup_channel,
        device,
        email_hash,
        ip_address_hash,
        page_url,
        page_type,
        referrer as referrer_url,

        -- products, carts and orders
        product_category,
        unit_price,
        quantity,
        items,
        currency,
        status as order_status,
        previous_status as previous_order_status,
        revenue as order_revenue,
        amount,

        -- payments
        payment_method,
        payment_status,

        -- lineage
        ingested_at,
        source as source_record,
        pipeline_version,
        run_id

    from numbered
    where copy_number = 1

),

already_staged as (

    {% if is_incremental() %}
        -- A copy of an event has the event's own date: only the dates read are looked at.
        select event_id from {{ this }}
        where event_date >= {{ read_since }}
    {% else %}
        select event_id from renamed
        where false
    {% endif %}

)

select * from renamed
where
    not exists (
        select 1 from already_staged
        where already_staged.event_id = renamed.event_id
    )
{{ physical_order(['ingested_at', 'occurred_at']) }}
