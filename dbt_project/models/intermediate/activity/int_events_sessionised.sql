{#
    Each event placed in a student's activity session: a new session starts at the student's
    first event and after every gap longer than `session_inactivity_minutes` (the LMS's own
    session id is not trusted for this: apps keep it across days, and logins may be missing).
    The time an event accounts for is the time until the student's next event in the same
    session; the last event of a session accounts for none (nothing says when the student left).

    A table rather than a view: sessions, daily activity and the feature marts all read it. It
    carries the payload columns int_student_course_daily sums, so that model's incremental run
    reads only this table: looking its events up in the events fact one by one cost 3 s (a
    random heap page each), joining them hashed all 5 M events.

    Incremental: new events (loaded since the newest one here, minus the events lookback) can
    only change their student's sessions from the session holding the student's last earlier
    event onwards; everything before that session keeps its numbers and times. So a run
    re-sessionises, per student with new events, only that tail, numbering its sessions on
    from the session it starts with, and merges the rows on event_id. The result equals a full
    rebuild (tests/integration/test_warehouse_incremental.py proves it); `sessionised_at` tells the models
    downstream which rows a run touched. Merged on (event_id, student_id, occurred_at) by the
    (student_id, occurred_at) index, without an index on event_id alone: see fct_events.
#}
{{
    config(
        materialized='incremental',
        unique_key=['event_id', 'student_id', 'occurred_at'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['student_id', 'occurred_at']},
            {'columns': ['sessionised_at']},
            {'columns': ['loaded_at']},
        ],
    )
}}

{% set gap_s = var('session_inactivity_minutes') * 60 %}
{#- the payload columns int_student_course_daily sums, carried through -#}
{% set payload = [
    'attempt_id', 'is_correct', 'answer_time_s', 'quiz_score', 'quiz_max_score',
    'video_watched_s', 'is_late', 'hidden_s', 'tab_context', 'feedback_rating',
] %}
{#- a table built before the payload columns: every event again, so every row gets them -#}
{% set resessionise_tails = is_incremental() and not lacks_column('feedback_rating') %}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

{% if resessionise_tails %}

new_events as (

    select
        student_id,
        min(occurred_at) as first_new_at
    from {{ ref('fct_events') }}
    where loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
    group by student_id

),

-- per such student, the session of the last event before the first new one, and where it
-- starts: the latest session start before the first new event. (No earlier event can share
-- that start's time: it would sit in the same session, 0 s before it.)
anchors as (

    {{ session_anchors('new_events') }}

),

-- the tails to re-sessionise: from the anchor session's start (an index range per student),
-- or all the events of students with nothing earlier
scope as (

    {{ session_tails('anchors') }}

    union all

    select
        fct.*,
        0 as sessions_before
    from {{ ref('fct_events') }} as fct
    inner join new_events
        on fct.student_id = new_events.student_id
    left join anchors
        on new_events.student_id = anchors.student_id
    where anchors.student_id is null

),

{% else %}

scope as (

    select
        *,
        0 as sessions_before
    from {{ ref('fct_events') }}

),

{% endif %}

events as (

    select
        event_id,
        event_type,
        student_id,
        course_id,
        chapter_id,
        quiz_id,
        {%- for column in payload %}
        {{ column }},
        {%- endfor %}
        occurred_at,
        loaded_at,
        sessions_before
    from scope

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
        {%- for column in payload %}
        {{ column }},
        {%- endfor %}
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
