{#
    Each event placed in a student's activity session: a new session starts at the student's
    first event and after every gap longer than `session_inactivity_minutes` (the LMS's own
    session id is not trusted for this: apps keep it across days, and logins may be missing).
    The time an event accounts for is the time until the student's next event in the same
    session; the last event of a session accounts for none (nothing says when the student left).

    A table rather than a view: sessions, daily activity and the feature marts all read it.

    Incremental: new events (loaded since the newest one here, minus the events lookback) can
    only change their student's sessions from the session holding the student's last earlier
    event onwards; everything before that session keeps its numbers and times. So a run
    re-sessionises, per student with new events, only that tail, numbering its sessions on
    from the session it starts with, and merges the rows on event_id. The result equals a full
    rebuild (tests/integration/test_warehouse.py proves it); `sessionised_at` tells the models
    downstream which rows a run touched.
#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy=('merge' if target.type == 'bigquery' else 'delete+insert'),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['event_id'], 'unique': true},
            {'columns': ['student_id', 'occurred_at']},
            {'columns': ['sessionised_at']},
        ],
    )
}}

{% set gap_s = var('session_inactivity_minutes') * 60 %}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

{% if is_incremental() %}

new_events as (

    select
        student_id,
        min(occurred_at) as first_new_at
    from {{ ref('fct_events') }}
    where loaded_at >= (
            select {{ dbt.dateadd('hour', -1 * var('events_lookback_hours'), 'max(loaded_at)') }}
            from {{ this }}
        )
    group by student_id

),

-- the session of each such student's last event before the first new one
anchor_sessions as (

    select
        done.student_id,
        max(done.session_number) as session_number
    from {{ this }} as done
    inner join new_events
        on done.student_id = new_events.student_id
    where done.occurred_at < new_events.first_new_at
    group by done.student_id

),

tails as (

    select
        done.student_id,
        done.session_number,
        done.occurred_at as tail_start_at,
        done.event_id as tail_start_event_id
    from {{ this }} as done
    inner join anchor_sessions
        on done.student_id = anchor_sessions.student_id
        and done.session_number = anchor_sessions.session_number
    where done.is_session_start

),

events as (

    select
        fct.event_id,
        fct.event_type,
        fct.student_id,
        fct.course_id,
        fct.chapter_id,
        fct.quiz_id,
        fct.occurred_at,
        fct.loaded_at,
        coalesce(tails.session_number - 1, 0) as sessions_before
    from {{ ref('fct_events') }} as fct
    inner join new_events
        on fct.student_id = new_events.student_id
    left join tails
        on fct.student_id = tails.student_id
    -- the tail: from the anchor session's first event (same order as the window functions)
    where tails.student_id is null
        or fct.occurred_at > tails.tail_start_at
        or (fct.occurred_at = tails.tail_start_at and fct.event_id >= tails.tail_start_event_id)

),

{% else %}

events as (

    select
        event_id,
        event_type,
        student_id,
        course_id,
        chapter_id,
        quiz_id,
        occurred_at,
        loaded_at,
        0 as sessions_before
    from {{ ref('fct_events') }}

),

{% endif %}

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
        sessions_before + sum(is_session_start) over (
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
        cast(time_on_task_s as {{ type_double() }}) as time_on_task_s,
        loaded_at,
        {{ dbt.current_timestamp() }} as sessionised_at
    from numbered

)

select * from final
