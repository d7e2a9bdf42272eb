{#
    One row per activity session of a student (see int_events_sessionised for the rule): when it
    started and ended, how many events, and the time on task it holds.

    Incremental: int_events_sessionised re-numbers a student's sessions only from the first one
    new events touched, so a run rebuilds, per such student, the sessions from that number on.
    The pre-hook first deletes them here: where new events joined two sessions, the student
    has one session fewer and the last number must go.
#}
{{
    config(
        materialized='incremental',
        unique_key='activity_session_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['activity_session_id'], 'unique': true}, {'columns': ['student_id']}],
        pre_hook="{{ fct_sessions_delete_renumbered() }}",
        post_hook="{{ analyze_after_incremental_run('sessionised_at') }}",
    )
}}

with

renumbered as (  -- noqa: ST03

    -- what an incremental run rebuilds: per student, the sessions from the first re-numbered one
    select
        touched.student_id,
        min(touched.session_number) as from_session_number
    from {{ ref('int_events_sessionised') }} as touched
    {% if is_incremental() %}
        where touched.sessionised_at > {{ watermark(this, 'sessionised_at') }}
    {% endif %}
    group by touched.student_id

),

sessionised as (

    select all_events.*
    from {{ ref('int_events_sessionised') }} as all_events
    {% if is_incremental() %}
        inner join renumbered
            on all_events.student_id = renumbered.student_id
            and all_events.session_number >= renumbered.from_session_number
    {% endif %}

),

final as (

    select
        activity_session_id,
        student_id,
        session_number,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        min(event_date) as session_date,
        count(*) as n_events,
        count(distinct course_id) as n_courses,
        {{ dbt.any_value('case when is_session_start then course_id end') }} as first_course_id,
        sum(time_on_task_s) as time_on_task_s,
        {{ seconds_between('min(occurred_at)', 'max(occurred_at)') }} as duration_s,
        max(sessionised_at) as sessionised_at
    from sessionised
    group by activity_session_id, student_id, session_number

)

select * from final
