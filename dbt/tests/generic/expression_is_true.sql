{#-
    Fails on every row for which `expression` is false; given a column, the expression
    follows it (`column_name >= ordered_at`). As in dbt_utils, a null result passes: test
    nulls with not_null.
-#}
{% test expression_is_true(model, expression, column_name=none) %}

    select *
    from {{ model }}
    where not ({{ column_name ~ ' ' if column_name }}{{ expression }})

{% endtest %}
