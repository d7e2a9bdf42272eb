{#
    Reading one scalar out of a JSON object column, for every warehouse: PostgreSQL stores the
    payload as jsonb, BigQuery as a JSON string. Always returns text; callers cast.
#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'lms_platform')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    json_value({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro postgres__json_text(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}
