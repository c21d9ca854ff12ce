with

dead_letters as (

    select * from {{ ref('stg_ecommerce__dead_letters') }}

),

final as (

    select
        failed_date as dead_letter_date,
        stage,
        error_type,
        count(*) as dead_letters,
        count(distinct run_id) as runs,
        min(failed_at) as first_failed_at,
        max(failed_at) as last_failed_at
    from dead_letters
    group by failed_date, stage, error_type

)

select * from final
