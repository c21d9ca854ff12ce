with

catalogue as (

    select * from {{ ref('products') }}

),

sold as (

    -- Products that orders name: one the catalogue lacks (a data set of another seed)
    -- still gets a row, named by its id.
    select
        product_id,
        min(product_category) as product_category,
        sum(quantity) as units_ordered,
        count(distinct order_id) as orders
    from {{ ref('fct_order_items') }}
    group by product_id

),

final as (

    select
        coalesce(catalogue.product_id, sold.product_id) as product_id,
        coalesce(catalogue.product_name, sold.product_id) as product_name,
        coalesce(catalogue.product_category, sold.product_category) as product_category,
        catalogue.list_price_eur,
        catalogue.product_id is not null as is_catalogued,
        coalesce(sold.units_ordered, 0) as units_ordered,
        coalesce(sold.orders, 0) as orders

    from catalogue
    full outer join sold on catalogue.product_id = sold.product_id

)

select * from final
