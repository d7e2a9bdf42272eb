{#
    Teacher: time spent per module (chapter) and student. Time on task comes from the sessions
    (time until the next event); answers and quiz events without a chapter are placed in their
    quiz's chapter.

    Incremental: a (student, chapter) row can only change where int_student_chapter_hours
    recomputed one of its hourly rows since the last run here (newer `sessionised_at`: new
    events, and earlier ones whose time on task they changed). A run recomputes those rows whole,
    from their hourly rows, and merges them on the key; all else is unchanged. After a course
    restructure (a quiz moved to another chapter, chapters renumbered: see
    macros/restructure.sql) it rebuilds every row instead, and so it does once on a table built
    before this model was incremental (no `structure_updated_at`).
#}
{% set structure = [ref('stg_lms__quizzes'), ref('stg_lms__chapters')] %}
{% set state = structure_state(structure) %}
{{
    config(
        materialized='incremental',
        unique_key='student_chapter_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['student_chapter_id'], 'unique': true}],
        pre_hook="{{ delete_all_if_restructured([ref('stg_lms__quizzes'), ref('stg_lms__chapters')]) }}",
    )
}}

-- the CTEs in the if below are top-level ones, not nested in it
-- sqlfluff:indentation:template_blocks_indent:False

with

-- per student, course, chapter, UTC day and hour, answers and quiz events placed in their
-- quiz's chapter; only the rows of a chapter count here
hours as (

    select * from {{ ref('int_student_chapter_hours') }}
    where chapter_id is not null

),

chapters as (

    select * from {{ ref('dim_chapter') }}

),

-- the newest course structure update this run has seen
structure as (

    select {{ state.newest }} as structure_updated_at

),

{% if is_incremental() and not state.restructured %}

-- what an incremental run recomputes: the student-chapters of the hourly rows recomputed since
-- the last run here
touched as (

    select distinct
        student_id,
        chapter_id
    from hours
    where sessionised_at > {{ watermark(this, 'sessionised_at') }}

),

{% endif %}

scoped as (

    select hours.*
    from hours
    {% if is_incremental() and not state.restructured %}
        inner join touched
            on hours.student_id = touched.student_id
            and hours.chapter_id = touched.chapter_id
    {% endif %}

),

final as (

    select
        {{ dbt.concat(['scoped.student_id', "'|'", 'scoped.chapter_id']) }} as student_chapter_id,
        scoped.student_id,
        chapters.course_id,
        scoped.chapter_id,
        chapters.chapter_position,
        cast(sum(scoped.n_events) as {{ dbt.type_bigint() }}) as n_events,
        sum(scoped.time_on_task_s) / 60.0 as time_on_task_min,
        sum(scoped.video_s) / 60.0 as video_min,
        sum(scoped.reading_s) / 60.0 as reading_min,
        sum(scoped.quiz_s) / 60.0 as quiz_min,
        max(scoped.sessionised_at) as sessionised_at,
        max(structure.structure_updated_at) as structure_updated_at
    from scoped
    inner join chapters on scoped.chapter_id = chapters.chapter_id
    cross join structure
    group by scoped.student_id, chapters.course_id, scoped.chapter_id, chapters.chapter_position

)

select * from final
