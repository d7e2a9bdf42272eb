{#
    Each event placed in a student's activity session: a new session starts at the student's
    first event and after every gap longer than `session_inactivity_minutes` (the LMS's own
    session id is not trusted for this: apps keep it across days, and logins may be missing).
    The time an event accounts for is the time until the student's next event in the same
    session; the last event of a session accounts for none (nothing says when the student left).

    A table rather than a view: sessions, daily activity and the feature marts all read it.
#}
{{ config(materialized='table', indexes=[{'columns': ['student_id', 'occurred_at']}]) }}

{% set gap_s = var('session_inactivity_minutes') * 60 %}

with

events as (

    select
        event_id,
        event_type,
        student_id,
        course_id,
        chapter_id,
        quiz_id,
        occurred_at
    from {{ ref('fct_events') }}

),

with_neighbours as (

    select
        *,
        lag(occurred_at) over (
            partition by student_id order by occurred_at, event_id
        ) as previous_occurred_at,
        lead(occurred_at) over (
            partition by student_id order by occurred_at, event_id
        ) as next_occurred_at
    from events

),

flagged as (

    select
        *,
        case
            when previous_occurred_at is null then 1
            when {{ seconds_between('previous_occurred_at', 'occurred_at') }} > {{ gap_s }} then 1
            else 0
        end as is_session_start,
        case
            when next_occurred_at is null then 0
            when {{ seconds_between('occurred_at', 'next_occurred_at') }} > {{ gap_s }} then 0
            else {{ seconds_between('occurred_at', 'next_occurred_at') }}
        end as time_on_task_s
    from with_neighbours

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by student_id order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged

),

final as (

    select
        event_id,
        event_type,
        student_id,
        course_id,
        chapter_id,
        quiz_id,
        occurred_at,
        {{ utc_date('occurred_at') }} as event_date,
        cast(session_number as {{ dbt.type_int() }}) as session_number,
        {{ dbt.concat(['student_id', "'#'", dbt.safe_cast('session_number', dbt.type_string())]) }}
            as activity_session_id,
        is_session_start = 1 as is_session_start,
        cast(time_on_task_s as {{ type_double() }}) as time_on_task_s
    from numbered

)

select * from final
