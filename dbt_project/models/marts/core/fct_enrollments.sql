{#
    One row per enrollment (a student in a course) with how it ended and the activity it saw:
    the grain of course completion, dropout and final-score measures.
#}
with

enrollments as (

    select * from {{ ref('stg_lms__enrollments') }}

),

activity as (

    select
        student_id,
        course_id,
        min(activity_date) as first_active_on,
        max(activity_date) as last_active_on,
        count(*) as n_active_days,
        sum(n_events) as n_events,
        sum(time_on_task_s) as time_on_task_s,
        sum(n_quiz_submits) as n_quiz_submits,
        sum(sum_quiz_score_pct) / nullif(sum(n_quiz_submits), 0) as avg_quiz_score_pct,
        sum(n_correct) * 1.0 / nullif(sum(n_answers), 0) as share_correct,
        max(max_chapter_position) as max_chapter_position
    from {{ ref('int_student_course_daily') }}
    group by student_id, course_id

),

final as (

    select
        enrollments.enrollment_id,
        enrollments.student_id,
        enrollments.course_id,
        enrollments.enrollment_status,
        enrollments.enrolled_at,
        enrollments.completed_at,
        enrollments.withdrawn_at,
        enrollments.final_score,
        enrollments.enrollment_status = 'completed' as is_completed,
        enrollments.enrollment_status = 'withdrawn' as is_withdrawn,
        activity.first_active_on,
        activity.last_active_on,
        coalesce(activity.n_active_days, 0) as n_active_days,
        coalesce(activity.n_events, 0) as n_events,
        coalesce(activity.time_on_task_s, 0) as time_on_task_s,
        coalesce(activity.n_quiz_submits, 0) as n_quiz_submits,
        activity.avg_quiz_score_pct,
        activity.share_correct,
        activity.max_chapter_position
    from enrollments
    left join activity
        on enrollments.student_id = activity.student_id
        and enrollments.course_id = activity.course_id

)

select * from final
