with

source as (

    select * from {{ source('ecommerce', 'dead_letter') }}

),

renamed as (

    -- The source's camelCase columns (errorMessage, ...), case-insensitive on both warehouses.
    select
        dead_letter_id,
        timestamp as failed_at,
        cast(timestamp as date) as failed_date,
        stage,
        error_type,
        errormessage as error_message,
        event_id,
        event_type,
        payloadstring as payload_text,
        source as source_record,
        pipeline_version,
        run_id

    from source

)

select * from renamed
