{#
    Admin: engagement by hour of the week (UTC) and course: events, students, time on task.

    Incremental: a cell (course, day of week, hour) can only change where int_student_chapter_hours
    recomputed a row since the last run here (newer `sessionised_at`: new events, and the earlier
    events whose time on task they changed). A run recomputes those cells whole, from all their
    hourly rows (distinct students do not add up), and merges them on the cell; every other cell
    is unchanged since the last run. Equal to a full rebuild
    (tests/integration/test_warehouse_incremental.py). A table built before this model was
    incremental (no `sessionised_at`) is recomputed whole once.
#}
{% set recompute_touched = is_incremental() and not lacks_column('sessionised_at') %}
{{
    config(
        materialized='incremental',
        unique_key='heatmap_cell_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['heatmap_cell_id'], 'unique': true}],
    )
}}

with

-- per student, course, chapter, UTC day and hour; only the rows of a course count here
hours as (

    select * from {{ ref('int_student_chapter_hours') }}
    where course_id is not null

),

-- what an incremental run recomputes (only incremental runs read it)
touched_cells as (  -- noqa: ST03

    select distinct
        course_id,
        iso_day_of_week,
        hour_of_day
    from hours
    {% if recompute_touched %}
        where sessionised_at > {{ watermark(this, 'sessionised_at') }}
    {% endif %}

),

scoped as (

    select hours.*
    from hours
    {% if recompute_touched %}
        inner join touched_cells
            on hours.course_id = touched_cells.course_id
            and hours.iso_day_of_week = touched_cells.iso_day_of_week
            and hours.hour_of_day = touched_cells.hour_of_day
    {% endif %}

),

-- one row per cell and student first, then distinct students are rows
per_student as (

    select
        course_id,
        iso_day_of_week,
        hour_of_day,
        student_id,
        sum(n_events) as n_events,
        sum(time_on_task_s) as time_on_task_s,
        max(sessionised_at) as sessionised_at
    from scoped
    group by course_id, iso_day_of_week, hour_of_day, student_id

),

final as (

    select
        {{ dbt.concat([
            'course_id', "'|'", dbt.safe_cast('iso_day_of_week', dbt.type_string()), "'|'",
            dbt.safe_cast('hour_of_day', dbt.type_string()),
        ]) }} as heatmap_cell_id,
        course_id,
        iso_day_of_week,
        hour_of_day,
        cast(sum(n_events) as {{ dbt.type_bigint() }}) as n_events,
        count(*) as n_active_students,
        sum(time_on_task_s) / 3600.0 as time_on_task_h,
        max(sessionised_at) as sessionised_at
    from per_student
    group by course_id, iso_day_of_week, hour_of_day

)

select * from final
