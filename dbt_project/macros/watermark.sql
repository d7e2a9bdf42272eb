{#
    The newest value of a timestamp column of a relation, minus `hours_back` hours: where an
    incremental run starts reading.

    On PostgreSQL the value is read first (an index answers max() at once) and inlined as a
    literal. Written as a subquery, the planner cannot know how few rows lie past it, assumes a
    third of the table and scans all of it, on every run; with the literal it uses the index
    and reads just the new rows. Elsewhere (BigQuery: no indexes), and inside dbt unit tests,
    where the relation is a fixture, it stays a scalar subquery; so it does when the relation
    lacks the column yet (a model that gains it on this run: on_schema_change adds it).
#}
{% macro watermark(relation, column, hours_back=0) -%}
    {{ return(adapter.dispatch('watermark', 'lms_platform')(relation, column, hours_back)) }}
{%- endmacro %}

{% macro default__watermark(relation, column, hours_back) -%}
    (select {{ dbt.dateadd('hour', -1 * hours_back, 'max(' ~ column ~ ')') }} from {{ relation }})
{%- endmacro %}

{% macro postgres__watermark(relation, column, hours_back) -%}
    {%- if execute and config.get('materialized') != 'unit' and has_column(relation, column) -%}
        {%- set newest = run_query('select max(' ~ column ~ ') from ' ~ relation).columns[0].values()[0] -%}
        {%- if newest is none -%}
            cast(null as timestamptz)
        {%- else -%}
            (cast('{{ newest }}' as timestamptz) - interval '{{ hours_back }} hours')
        {%- endif -%}
    {%- else -%}
        {{ default__watermark(relation, column, hours_back) }}
    {%- endif -%}
{%- endmacro %}

{#
    The newest value of a run-stamp column of a relation, or the start of time when it holds
    none (an empty table): "since the last run here" for a model that stamps the rows it writes.
#}
{% macro last_stamp(relation, column) -%}
    coalesce({{ watermark(relation, column) }}, cast('1970-01-01 00:00:00+00:00' as {{ type_timestamptz() }}))
{%- endmacro %}
