{#
    Pre-hook of the incremental as-of models: on an incremental run, delete the rows whose
    (key columns) the as-of spine no longer holds (an enrollment withdrawn earlier than the
    last run knew, a course that ends sooner, a lower `as_of_horizon`). A merge only replaces
    the rows a run writes; without this, such rows would stay forever.

    With `written_at` (the model's run-stamp column), only the enrollments whose spine shrank
    since the model's newest stamp are checked (int_enrollment_asof_extents), through the
    model's index on its leading key columns; without it, or on a table without that column
    yet, every row is. The model must declare `-- depends_on:` both the spine and the extents.
#}
{% macro delete_rows_off_the_spine(key_columns, written_at=none) -%}
    {%- if is_incremental() -%}
        {%- set scope_columns = key_columns | reject('equalto', 'as_of_date') | list -%}
        delete from {{ this }} as done
        where not exists (
            select 1
            from {{ ref('int_enrollment_asof_dates') }} as spine
            where
            {%- for column in key_columns %}
                {% if not loop.first %}and {% endif %}spine.{{ column }} = done.{{ column }}
            {%- endfor %}
        )
        {%- if written_at and has_column(this, written_at) %}
            and exists (
                select 1
                from {{ ref('int_enrollment_asof_extents') }} as shrunk
                where shrunk.shrunk_at > {{ last_stamp(this, written_at) }}
                {%- for column in scope_columns %}
                    and shrunk.{{ column }} = done.{{ column }}
                {%- endfor %}
            )
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#
    The incremental as-of models' other half of "what to recompute": the spine rows (alias)
    with nothing in this model yet (new as-of dates, new enrollments).
#}
{% macro not_yet_here(alias, key_columns) -%}
    not exists (
        select 1
        from {{ this }} as done
        where
        {%- for column in key_columns %}
            {% if not loop.first %}and {% endif %}done.{{ column }} = {{ alias }}.{{ column }}
        {%- endfor %}
    )
{%- endmacro %}

{#
    The rows of `relation` with the key (`key_columns`) of a row of `keys`. On PostgreSQL one
    index lookup per key (LATERAL, OFFSET 0): as a join, the planner reads the whole relation
    and probes `keys` with each row, however few keys there are; elsewhere a join.
#}
{% macro rows_by_key(relation, keys, key_columns) -%}
    {{ return(adapter.dispatch('rows_by_key', 'lms_platform')(relation, keys, key_columns)) }}
{%- endmacro %}

{% macro default__rows_by_key(relation, keys, key_columns) -%}
    select by_key.*
    from {{ relation }} as by_key
    inner join {{ keys }}
        on
        {%- for column in key_columns %}
            {% if not loop.first %}and {% endif %}by_key.{{ column }} = {{ keys }}.{{ column }}
        {%- endfor %}
{%- endmacro %}

{% macro postgres__rows_by_key(relation, keys, key_columns) -%}
    select by_key.*
    from {{ keys }}
    cross join lateral (
        select each_row.*
        from {{ relation }} as each_row
        where
        {%- for column in key_columns %}
            {% if not loop.first %}and {% endif %}each_row.{{ column }} = {{ keys }}.{{ column }}
        {%- endfor %}
        offset 0
    ) as by_key
{%- endmacro %}

{# The rows of `relation` with the (student_id, course_id, topic_id, as_of_date) keys of `keys`. #}
{% macro rows_by_topic_asof_key(relation, keys) -%}
    {{ return(rows_by_key(relation, keys, ['student_id', 'course_id', 'topic_id', 'as_of_date'])) }}
{%- endmacro %}
