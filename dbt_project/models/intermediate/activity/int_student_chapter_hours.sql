{#
    Activity per student, course, chapter, UTC day and hour: events and time on task (in all,
    and on videos, reading and quizzes), answers and quiz events without a chapter placed in
    their quiz's chapter. The building block of the engagement heatmap (hour of the week by
    course) and of time per module (student by chapter): both recompute the rows new events
    touch from this table rather than from every event.

    Incremental: a row can only change where int_events_sessionised touched one of its events
    since the last run here (newer `sessionised_at`). A run recomputes, per student with such
    events, every row of the UTC days from the first to the last touched one, from that stretch
    of the student's events (an index range), and merges them on the key; a day never loses
    events, so nothing else can change. After a quiz moved to another chapter (a restructure:
    see macros/restructure.sql) it rebuilds every row instead.
#}
{% set structure = [ref('stg_lms__quizzes')] %}
{% set state = structure_state(structure) %}
{% set recompute_touched = is_incremental() and not state.restructured %}
{{
    config(
        materialized='incremental',
        unique_key='student_hour_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['student_hour_id'], 'unique': true},
            {'columns': ['student_id', 'chapter_id']},
            {'columns': ['course_id', 'iso_day_of_week', 'hour_of_day']},
            {'columns': ['sessionised_at']},
        ],
        pre_hook="{{ delete_all_if_restructured([ref('stg_lms__quizzes')]) }}",
    )
}}

-- the CTEs in the if below are top-level ones, not nested in it
-- sqlfluff:indentation:template_blocks_indent:False

with

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

-- the newest quiz update this run has seen
structure as (

    select {{ state.newest }} as structure_updated_at

),

{% if recompute_touched %}

-- per student, the touched stretch: the UTC days from the first to the last row touched since
-- the last run here
touched as (

    {{ touched_student_days() }}

),

sessionised as (

    {{ rows_on_touched_days(ref('int_events_sessionised'), 'touched') }}

),

{% else %}

sessionised as (

    select * from {{ ref('int_events_sessionised') }}

),

{% endif %}

placed as (

    select
        sessionised.student_id,
        sessionised.course_id,
        coalesce(sessionised.chapter_id, quizzes.chapter_id) as chapter_id,
        sessionised.event_date as activity_date,
        {{ iso_dow('sessionised.occurred_at') }} as iso_day_of_week,
        {{ utc_hour('sessionised.occurred_at') }} as hour_of_day,
        sessionised.event_type,
        sessionised.time_on_task_s,
        sessionised.sessionised_at,
        structure.structure_updated_at
    from sessionised
    left join quizzes on sessionised.quiz_id = quizzes.quiz_id
    cross join structure

),

final as (

    select
        {{ dbt.concat([
            'student_id', "'|'", "coalesce(course_id, '')", "'|'", "coalesce(chapter_id, '')", "'|'",
            dbt.safe_cast('activity_date', dbt.type_string()), "'|'",
            dbt.safe_cast('hour_of_day', dbt.type_string()),
        ]) }} as student_hour_id,
        student_id,
        course_id,
        chapter_id,
        activity_date,
        iso_day_of_week,
        hour_of_day,
        count(*) as n_events,
        sum(time_on_task_s) as time_on_task_s,
        sum(case when event_type like 'video%' then time_on_task_s else 0 end) as video_s,
        sum(case when event_type in ('page_view', 'scroll_event') then time_on_task_s else 0 end)
            as reading_s,
        sum(
            case
                when event_type like 'quiz%' or event_type = 'question_answer'
                    then time_on_task_s
                else 0
            end
        ) as quiz_s,
        max(sessionised_at) as sessionised_at,
        max(structure_updated_at) as structure_updated_at
    from placed
    -- the rows neither report reads: no course and no chapter (logins, logouts)
    where course_id is not null or chapter_id is not null
    group by student_id, course_id, chapter_id, activity_date, iso_day_of_week, hour_of_day

)

select * from final
