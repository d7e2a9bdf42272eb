{#
    Whether an existing relation has a column (the incremental models' checks for a table built
    before they kept that column).

    On PostgreSQL one lookup in pg_attribute by the table's oid (the system caches answer it).
    dbt's get_columns_in_relation asks information_schema.columns instead: a view joining half
    the catalog, asked once per incremental model and per data test scoped to the latest batch
    (py-spy put ~5 s of an incremental build's samples in those calls, though the build's summed
    node time did not fall measurably with this). Elsewhere (BigQuery) the adapter's own call.
#}
{% macro has_column(relation, column) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(adapter.dispatch('has_column', 'lms_platform')(relation, column)) }}
{%- endmacro %}

{% macro default__has_column(relation, column) -%}
    {{ return(column in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list)) }}
{%- endmacro %}

{% macro postgres__has_column(relation, column) -%}
    {%- set table = relation.include(database=false) | string | replace("'", "''") -%}
    {%- set found -%}
        select count(*)
        from pg_catalog.pg_attribute
        where attrelid = to_regclass('{{ table }}')
            and attname = '{{ column | replace("'", "''") }}'
            and attnum > 0
            and not attisdropped
    {%- endset -%}
    {{ return(run_query(found).columns[0].values()[0] > 0) }}
{%- endmacro %}
