{# A UTC instant: timestamptz on PostgreSQL, TIMESTAMP (always UTC) on BigQuery. #}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'lms_platform')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamp
{%- endmacro %}

{% macro postgres__type_timestamptz() -%}
    timestamptz
{%- endmacro %}

{# Double precision floats, named the same way on both warehouses' contracts. #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'lms_platform')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    float64
{%- endmacro %}

{% macro postgres__type_double() -%}
    double precision
{%- endmacro %}

{# Small flags and labels: smallint on PostgreSQL, INT64 (the only integer) on BigQuery. #}
{% macro type_smallint() -%}
    {{ return(adapter.dispatch('type_smallint', 'lms_platform')()) }}
{%- endmacro %}

{% macro default__type_smallint() -%}
    int64
{%- endmacro %}

{% macro postgres__type_smallint() -%}
    smallint
{%- endmacro %}
