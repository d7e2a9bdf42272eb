{#
    Custom schema names are used as they are (staging, intermediate, marts, features,
    snapshots), not prefixed with the target schema, so BI tools and the ML code read fixed
    names. A test or a benchmark isolates itself with the `LMS_DBT_SCHEMA_PREFIX` variable:
    prefix `t_ab12_` turns `marts` into `t_ab12_marts`.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set prefix = env_var('LMS_DBT_SCHEMA_PREFIX', '') -%}
    {%- if custom_schema_name is none -%}
        {{ prefix }}{{ target.schema | trim }}
    {%- else -%}
        {{ prefix }}{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
