{#-
    One row per line of each order in `relation` (order_placed events with an `items`
    array): the relation's order_id, currency, event_date and ingested_at, the line's
    1-based line_number and its fields. Each warehouse unnests an array with its positions
    in its own way.
-#}
{% macro order_lines(relation) -%}
    {%- if target.type == 'bigquery' -%}
    select
        orders.order_id,
        orders.currency,
        orders.event_date,
        orders.ingested_at,
        line_offset + 1 as line_number,
        item.product_id,
        item.product_category,
        item.unit_price,
        item.quantity
    from {{ relation }} as orders
    cross join unnest(orders.items) as item with offset as line_offset
    {%- else -%}
    select
        orders.order_id,
        orders.currency,
        orders.event_date,
        orders.ingested_at,
        line_numbers.line_number,
        orders.items[line_numbers.line_number].product_id as product_id,
        orders.items[line_numbers.line_number].product_category as product_category,
        orders.items[line_numbers.line_number].unit_price as unit_price,
        orders.items[line_numbers.line_number].quantity as quantity
    from {{ relation }} as orders
    cross join unnest(generate_series(1, len(orders.items))) as line_numbers (line_number)
    {%- endif -%}
{%- endmacro %}
