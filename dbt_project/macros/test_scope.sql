{#
    Data tests on the big incremental models check, on an incremental `dbt build`, only the rows
    that build wrote; a full refresh, a plain `dbt test` and `--vars '{test_all_rows: true}'`
    check every row.

    Why that keeps the guarantees: an incremental run only writes its batch (merged on the
    model's key, delete+insert or MERGE), so rows it did not write are the rows an earlier run
    already tested, unchanged since. A key duplicated across the boundary cannot appear either:
    the merge deletes the old copy of every key it inserts. What the batch can break, the scoped
    test sees; a whole-table test per hourly run would cost more than the run itself.

    A test opts in with a placeholder `where` (dbt renders `where` at parse time, so the
    run-time query is built here, the way dbt's docs override get_where_subquery):
      where: "__latest_batch__:sessionised_at"  rows stamped by the newest run
      where: "__latest_batch__:loaded_at"       rows loaded within `events_lookback_hours` of
                                               the newest one (what fct_events' run re-read)
    Any other `where` is used as written.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('__latest_batch__:') -%}
        {%- set column = where.split(':')[1] -%}
        {%- if not lms_test_whole_tables() -%}
            {%- set hours_back = var('events_lookback_hours') if column == 'loaded_at' else 0 -%}
            {%- set filtered -%}
                (select * from {{ relation }} where {{ column }} >= {{ watermark(relation, column, hours_back) }}) dbt_subquery
            {%- endset -%}
            {%- do return(filtered) -%}
        {%- endif -%}
        {%- do return(relation) -%}
    {%- elif where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{# True when tests check whole tables: a full refresh, `dbt test` on its own, or the var. #}
{% macro lms_test_whole_tables() -%}
    {{ return(
        flags.FULL_REFRESH
        or flags.WHICH != 'build'
        or var('test_all_rows', false) in [true, 'true', 'True', 1, '1']
    ) }}
{%- endmacro %}
