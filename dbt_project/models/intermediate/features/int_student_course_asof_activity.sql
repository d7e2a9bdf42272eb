{#
    The activity half of student_course_asof: per enrollment and as-of date, the sums of the
    student's daily course activity strictly before that date (nothing from the as-of day or
    later). Labels are not here: they look forward and change whenever the horizon moves, so
    student_course_asof derives them, cheaply, on every run; these sums are the expensive part.

    Incremental: a row can only change when a day before its as-of date changed. A run
    recomputes, per student-course whose daily rows int_student_course_daily rewrote since the
    last run here (newer `sessionised_at` than the `daily_watermark` stored by that run), the
    as-of rows after the first rewritten day, plus the spine rows not here yet (new as-of dates,
    new enrollments); rows merge on (enrollment_id, as_of_date). The pre-hook deletes rows the
    spine no longer has (an enrollment withdrawn earlier than known, a shortened course). The
    result equals a full rebuild (tests/integration/test_warehouse_incremental.py).
#}
{{
    config(
        materialized='incremental',
        unique_key=['enrollment_id', 'as_of_date'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[{'columns': ['enrollment_id', 'as_of_date'], 'unique': true}],
        pre_hook="{{ delete_rows_off_the_spine(['enrollment_id', 'as_of_date']) }}",
    )
}}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

spine as (

    select
        enrollment_id,
        student_id,
        course_id,
        as_of_date
    from {{ ref('int_enrollment_asof_dates') }}

),

daily as (

    select * from {{ ref('int_student_course_daily') }}

),

-- the newest daily stamp this run has seen: the next run recomputes what is newer
watermark as (

    select max(sessionised_at) as daily_watermark
    from daily

),

{% if is_incremental() %}

-- per student-course, the first day int_student_course_daily rewrote since the last run here
rewritten as (

    select
        student_id,
        course_id,
        min(activity_date) as first_rewritten_on
    from daily
    where sessionised_at > {{ watermark(this, 'daily_watermark') }}
    group by student_id, course_id

),

todo as (

    select spine.*
    from spine
    left join rewritten
        on spine.student_id = rewritten.student_id
        and spine.course_id = rewritten.course_id
    where spine.as_of_date > rewritten.first_rewritten_on
        or {{ not_yet_here('spine', ['enrollment_id', 'as_of_date']) }}

),

{% else %}

todo as (

    select * from spine

),

{% endif %}

final as (

    select
        todo.enrollment_id,
        todo.as_of_date,
        todo.student_id,
        todo.course_id,
        count(daily.activity_date) as n_active_days,
        sum(daily.n_events) as n_events,
        sum(daily.n_sessions) as n_session_days,
        sum(daily.time_on_task_s) as time_on_task_s,
        sum(case when daily.activity_date >= {{ add_days('todo.as_of_date', -7) }} then 1 else 0 end)
            as n_active_days_last_7,
        sum(case when daily.activity_date >= {{ add_days('todo.as_of_date', -7) }} then daily.n_events else 0 end)
            as n_events_last_7,
        sum(
            case
                when daily.activity_date >= {{ add_days('todo.as_of_date', -14) }}
                    and daily.activity_date < {{ add_days('todo.as_of_date', -7) }}
                    then daily.n_events
                else 0
            end
        ) as n_events_prev_7,
        sum(case when daily.activity_date >= {{ add_days('todo.as_of_date', -7) }} then daily.time_on_task_s else 0 end)
            as time_on_task_s_last_7,
        max(daily.activity_date) as last_active_on,
        sum(daily.n_quiz_submits) as n_quiz_submits,
        sum(daily.sum_quiz_score_pct) as sum_quiz_score_pct,
        sum(daily.n_answers) as n_answers,
        sum(daily.n_correct) as n_correct,
        sum(daily.answer_time_s) as answer_time_s,
        sum(daily.n_videos_completed) as n_videos_completed,
        sum(daily.video_watched_s) as video_watched_s,
        max(daily.max_chapter_position) as max_chapter_position,
        sum(daily.n_assignments) as n_assignments,
        sum(daily.n_late_assignments) as n_late_assignments,
        sum(daily.n_quiz_tab_hidden) as n_quiz_tab_hidden,
        sum(daily.sum_feedback_rating) as sum_feedback_rating,
        sum(daily.n_feedback_ratings) as n_feedback_ratings,
        max(watermark.daily_watermark) as daily_watermark
    from todo
    cross join watermark
    left join daily
        on todo.student_id = daily.student_id
        and todo.course_id = daily.course_id
        and daily.activity_date < todo.as_of_date
    group by todo.enrollment_id, todo.as_of_date, todo.student_id, todo.course_id

)

select * from final
