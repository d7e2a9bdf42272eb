{#
    Teacher: time spent per module (chapter) and student. Time on task comes from the sessions
    (time until the next event); answers and quiz events without a chapter are placed in their
    quiz's chapter.

    Incremental: a (student, chapter) row can only change where int_events_sessionised touched
    one of its events since the last run here (newer `sessionised_at`: new events, and earlier
    ones whose time on task they changed). A run recomputes those rows whole and merges them on
    the key; all else is unchanged. After a course restructure (a quiz moved to another chapter,
    chapters renumbered: see macros/restructure.sql) it rebuilds every row instead, and so it
    does once on a table built before this model was incremental (no `structure_updated_at`).
#}
{% set structure = [ref('stg_lms__quizzes'), ref('stg_lms__chapters')] %}
{% set state = structure_state(structure) %}
{{
    config(
        materialized='incremental',
        unique_key='student_chapter_id',
        incremental_strategy=('merge' if target.type == 'bigquery' else 'delete+insert'),
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['student_chapter_id'], 'unique': true}],
        pre_hook="{{ delete_all_if_restructured([ref('stg_lms__quizzes'), ref('stg_lms__chapters')]) }}",
    )
}}

-- the CTEs in the if below are top-level ones, not nested in it
-- sqlfluff:indentation:template_blocks_indent:False

with

sessionised as (

    select * from {{ ref('int_events_sessionised') }}

),

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

chapters as (

    select * from {{ ref('dim_chapter') }}

),

-- the newest course structure update this run has seen
structure as (

    select {{ state.newest }} as structure_updated_at

),

placed as (

    select
        sessionised.student_id,
        sessionised.event_type,
        coalesce(sessionised.chapter_id, quizzes.chapter_id) as chapter_id,
        sessionised.time_on_task_s,
        sessionised.sessionised_at
    from sessionised
    left join quizzes on sessionised.quiz_id = quizzes.quiz_id

),

{% if is_incremental() and not state.restructured %}

-- what an incremental run recomputes, read on its own (by the sessionised_at index) rather
-- than from `placed`, which would then be materialised whole
touched as (

    select distinct
        touched_events.student_id,
        coalesce(touched_events.chapter_id, quizzes.chapter_id) as chapter_id
    from {{ ref('int_events_sessionised') }} as touched_events
    left join quizzes on touched_events.quiz_id = quizzes.quiz_id
    where touched_events.sessionised_at > {{ watermark(this, 'sessionised_at') }}

),

{% endif %}

scoped as (

    select placed.*
    from placed
    {% if is_incremental() and not state.restructured %}
        inner join touched
            on placed.student_id = touched.student_id
            and placed.chapter_id = touched.chapter_id
    {% endif %}

),

final as (

    select
        {{ dbt.concat(['scoped.student_id', "'|'", 'scoped.chapter_id']) }} as student_chapter_id,
        scoped.student_id,
        chapters.course_id,
        scoped.chapter_id,
        chapters.chapter_position,
        count(*) as n_events,
        sum(scoped.time_on_task_s) / 60.0 as time_on_task_min,
        sum(case when scoped.event_type like 'video%' then scoped.time_on_task_s else 0 end) / 60.0
            as video_min,
        sum(case when scoped.event_type in ('page_view', 'scroll_event') then scoped.time_on_task_s else 0 end)
        / 60.0 as reading_min,
        sum(
            case
                when scoped.event_type like 'quiz%' or scoped.event_type = 'question_answer'
                    then scoped.time_on_task_s
                else 0
            end
        ) / 60.0 as quiz_min,
        max(scoped.sessionised_at) as sessionised_at,
        max(structure.structure_updated_at) as structure_updated_at
    from scoped
    inner join chapters on scoped.chapter_id = chapters.chapter_id
    cross join structure
    group by scoped.student_id, chapters.course_id, scoped.chapter_id, chapters.chapter_position

)

select * from final
