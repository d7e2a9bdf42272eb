{#
    The data horizon: the day after the newest event in the events fact, or the `as_of_horizon`
    var when set. "Today" for the as-of marts: on a live platform it is today, on a replayed or
    simulated school it is the end of the data. A scalar subquery.
#}
{% macro horizon_date() -%}
    {%- if var('as_of_horizon', none) -%}
        cast('{{ var("as_of_horizon") }}' as date)
    {%- else -%}
        (select coalesce({{ add_days('max(event_date)', 1) }}, current_date) from {{ ref('fct_events') }})
    {%- endif -%}
{%- endmacro %}
