-- Every order's lines add up to its gross revenue (to the cent) and its item count.
with

lines as (

    select
        order_id,
        round(sum(line_revenue), 2) as lines_revenue,
        sum(quantity) as lines_quantity
    from {{ ref('fct_order_items') }}
    group by order_id

)

select
    orders.order_id,
    orders.gross_revenue,
    lines.lines_revenue,
    orders.items_count,
    lines.lines_quantity
from {{ ref('fct_orders') }} as orders
left join lines on orders.order_id = lines.order_id
where
    lines.order_id is null
    or abs(orders.gross_revenue - lines.lines_revenue) > 0.005
    or orders.items_count != lines.lines_quantity
