{#
    The incremental strategy of the models merged on a unique key, in one place: MERGE on
    BigQuery, delete+insert elsewhere (PostgreSQL: the strategy the runs were measured with).
#}
{% macro upsert_strategy() -%}
    {{ return('merge' if target.type == 'bigquery' else 'delete+insert') }}
{%- endmacro %}

{#
    When the dbt invocation writing a row started, as a timestamp: a run stamp that differs
    between any two runs (a watermark taken from the data does not move when no new data came).
#}
{% macro run_stamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00:00' as {{ type_timestamptz() }})
{%- endmacro %}
