{#
    The goccy BigQuery emulator runs `create schema` but answers without the job metadata
    dbt-bigquery reads afterwards, so on the emulator target the datasets are created by the
    caller (the BigQuery test) and dbt skips the statement. Every other target: unchanged.
#}
{% macro bigquery__create_schema(relation) -%}
    {%- if target.name != 'bigquery_emulator' -%}
        {{ adapter.create_schema(relation) }}
    {%- endif -%}
{%- endmacro %}
