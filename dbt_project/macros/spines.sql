{#
    Integer and date spines without dbt_utils (no package hub is reachable): each warehouse's
    own set-returning function.
#}
{% macro integer_spine(lower, upper, column='n') -%}
    {{ return(adapter.dispatch('integer_spine', 'lms_platform')(lower, upper, column)) }}
{%- endmacro %}

{% macro default__integer_spine(lower, upper, column) -%}
    select {{ column }} from unnest(generate_array({{ lower }}, {{ upper }})) as {{ column }}
{%- endmacro %}

{% macro postgres__integer_spine(lower, upper, column) -%}
    select generate_series({{ lower }}, {{ upper }}) as {{ column }}
{%- endmacro %}

{% macro date_spine_between(start_date, end_date, column='date_day') -%}
    {{ return(adapter.dispatch('date_spine_between', 'lms_platform')(start_date, end_date, column)) }}
{%- endmacro %}

{% macro default__date_spine_between(start_date, end_date, column) -%}
    select {{ column }}
    from unnest(generate_date_array({{ start_date }}, {{ end_date }})) as {{ column }}
{%- endmacro %}

{% macro postgres__date_spine_between(start_date, end_date, column) -%}
    select cast(d as date) as {{ column }}
    from generate_series(cast({{ start_date }} as date), cast({{ end_date }} as date), interval '1 day') as d
{%- endmacro %}
