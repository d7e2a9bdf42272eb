{#
    One row per activity session of a student (see int_events_sessionised for the rule): when it
    started and ended, how many events, and the time on task it holds.
#}
with

sessionised as (

    select * from {{ ref('int_events_sessionised') }}

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
        {{ seconds_between('min(occurred_at)', 'max(occurred_at)') }} as duration_s
    from sessionised
    group by activity_session_id, student_id, session_number

)

select * from final
