{#
    Activity per student, course and UTC day: the building block of the trend marts and of the
    as-of feature marts (which sum days strictly before the as-of date, so nothing from that day
    or later leaks into a feature). Course-less events (login, logout) count towards the
    student's day but not towards any course.

    Incremental: a run recomputes, whole, per student with events that int_events_sessionised
    touched since the last run here (newer `sessionised_at`), the days from the first to the
    last touched one, and merges them on the grain; a day never loses events, so nothing else
    can change.
#}
{{
    config(
        materialized='incremental',
        unique_key=['student_id', 'course_id', 'activity_date'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['student_id', 'course_id', 'activity_date']}],
    )
}}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

{% if is_incremental() %}

-- per student, the touched stretch: the UTC days from the first to the last row touched since
-- the last run here (every day in it is recomputed whole)
touched as (

    {{ touched_student_days() }}

),

-- the stretch's events (one index range per student); int_events_sessionised carries the
-- payload columns summed here, so the events fact is not read
events as (

    {{ rows_on_touched_days(ref('int_events_sessionised'), 'touched') }}

),

{% else %}

events as (

    select * from {{ ref('int_events_sessionised') }}

),

{% endif %}

chapters as (

    select * from {{ ref('stg_lms__chapters') }}

),

joined as (

    select
        events.student_id,
        events.course_id,
        events.event_date as activity_date,
        events.event_type,
        events.chapter_id,
        events.attempt_id,
        events.is_correct,
        events.answer_time_s,
        events.quiz_score,
        events.quiz_max_score,
        events.video_watched_s,
        events.is_late,
        events.hidden_s,
        events.tab_context,
        events.feedback_rating,
        events.activity_session_id,
        events.time_on_task_s,
        events.sessionised_at,
        chapters.chapter_position
    from events
    left join chapters
        on events.chapter_id = chapters.chapter_id
    where events.course_id is not null

),

final as (

    select
        student_id,
        course_id,
        activity_date,
        count(*) as n_events,
        count(distinct activity_session_id) as n_sessions,
        max(chapter_position) as max_chapter_position,
        sum(time_on_task_s) as time_on_task_s,
        sum(case when event_type = 'page_view' then 1 else 0 end) as n_page_views,
        sum(case when event_type = 'video_complete' then 1 else 0 end) as n_videos_completed,
        sum(case when event_type in ('video_pause', 'video_complete') then coalesce(video_watched_s, 0) else 0 end)
            as video_watched_s,
        sum(case when event_type = 'quiz_submit' then 1 else 0 end) as n_quiz_submits,
        sum(case when event_type = 'quiz_submit' then quiz_score / nullif(quiz_max_score, 0) * 100 end)
            as sum_quiz_score_pct,
        sum(case when event_type = 'question_answer' then 1 else 0 end) as n_answers,
        sum(case when event_type = 'question_answer' and is_correct then 1 else 0 end) as n_correct,
        sum(case when event_type = 'question_answer' then answer_time_s end) as answer_time_s,
        sum(case when event_type = 'assignment_submit' then 1 else 0 end) as n_assignments,
        sum(case when event_type = 'assignment_submit' and is_late then 1 else 0 end) as n_late_assignments,
        sum(case when event_type = 'tab_hidden' and tab_context = 'quiz' then 1 else 0 end) as n_quiz_tab_hidden,
        sum(case when event_type = 'live_class_join' then 1 else 0 end) as n_live_joins,
        sum(case when event_type = 'feedback' then feedback_rating end) as sum_feedback_rating,
        count(case when event_type = 'feedback' then feedback_rating end) as n_feedback_ratings,
        max(sessionised_at) as sessionised_at
    from joined
    group by student_id, course_id, activity_date

)

select * from final
