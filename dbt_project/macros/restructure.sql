{#
    Incremental models whose rows also depend on the course structure (which chapter a quiz is
    in, a chapter's course and position) keep, per row, the newest OLTP update of that structure
    they were built with (`structure_updated_at`). When the OLTP snapshot holds a newer one (a
    course was restructured: rare), recomputing only the groups new events touched is not
    enough, as a moved quiz changes groups no new event touched, and may empty one. So the run
    rebuilds the model whole: the pre-hook empties it and the model selects every group.
#}

{# The newest `updated_at` of the given relations: a scalar subquery. #}
{% macro structure_updated_at(relations) -%}
    (
        select max(updated_at) from (
            {%- for relation in relations %}
            select updated_at from {{ relation }}{% if not loop.last %} union all{% endif %}
            {%- endfor %}
        ) as updates
    )
{%- endmacro %}

{# True when the structure changed since the rows here were built (never on an empty model). #}
{% macro restructured_since_last_run(relations) -%}
    coalesce({{ structure_updated_at(relations) }} > {{ watermark(this, 'structure_updated_at') }}, false)
{%- endmacro %}

{# Pre-hook: on an incremental run after a restructure, delete every row (the run rewrites all). #}
{% macro delete_all_if_restructured(relations) -%}
    {%- if lacks_column('structure_updated_at') -%}
        delete from {{ this }}
    {%- elif is_incremental() -%}
        delete from {{ this }} where {{ restructured_since_last_run(relations) }}
    {%- endif -%}
{%- endmacro %}

{#
    The structure as this run sees it, decided once, when the model is compiled: `newest`, the
    newest update as SQL (a literal where the run can read it first, so the rows written carry
    exactly the value the decision used), and `restructured`, whether it is newer than the
    newest one the rows here were built with. In dbt unit tests (fixtures, not tables) and when
    not executing: the scalar subquery and false.

    Why at compile time: as SQL (`... or <restructured>`) the planner cannot know the condition
    is false and plans for every event, sorting millions of rows on a 1 % batch. Against a
    snapshot landing between compile and the pre-hook: the pre-hook may then empty the table
    while the model only rewrote the touched rows, but those carry the older `newest`, so the
    next run sees the restructure and rebuilds everything.
#}
{% macro structure_state(relations) -%}
    {%- if execute and config.get('materialized') != 'unit' and is_incremental() -%}
        {%- set updates -%}
            select max(updated_at) from (
                {%- for relation in relations %}
                select updated_at from {{ relation }}{% if not loop.last %} union all{% endif %}
                {%- endfor %}
            ) as updates
        {%- endset -%}
        {%- set newest = run_query(updates).columns[0].values()[0] -%}
        {%- set known = none -%}
        {%- if not lacks_column('structure_updated_at') -%}
            {%- set known = run_query('select max(structure_updated_at) from ' ~ this).columns[0].values()[0] -%}
        {%- endif -%}
        {%- if newest is not none -%}
            {%- do return({
                'newest': "cast('" ~ newest ~ "' as " ~ type_timestamptz() ~ ")",
                'restructured': known is none or newest > known,
            }) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return({'newest': structure_updated_at(relations), 'restructured': false}) -%}
{%- endmacro %}

{#
    True on an incremental run when this model's table lacks the column (a table built before
    the model kept it incrementally): the run then recomputes every row instead of reading a
    watermark that is not there (on_schema_change adds the column as it writes them).
#}
{% macro lacks_column(column) -%}
    {%- if execute and config.get('materialized') != 'unit' and is_incremental() -%}
        {%- do return(not has_column(this, column)) -%}
    {%- endif -%}
    {%- do return(false) -%}
{%- endmacro %}
