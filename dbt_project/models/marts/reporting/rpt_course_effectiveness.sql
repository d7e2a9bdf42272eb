{#
    Admin: does a course work? Completion and dropout, final scores, and the score gain between
    a student's first and last submitted quiz in the course (averaged over students with two or
    more quizzes).
#}
with

courses as (

    select * from {{ ref('dim_course') }}

),

enrollments as (

    select * from {{ ref('fct_enrollments') }}

),

attempts as (

    select
        student_id,
        course_id,
        score_pct,
        row_number() over (
            partition by student_id, course_id order by submitted_at, attempt_id
        ) as first_rank,
        row_number() over (
            partition by student_id, course_id order by submitted_at desc, attempt_id desc
        ) as last_rank
    from {{ ref('fct_quiz_attempts') }}
    where is_submitted

),

gains as (

    select
        course_id,
        avg(last_score_pct - first_score_pct) as avg_score_gain_pct
    from (
        select
            student_id,
            course_id,
            max(case when first_rank = 1 then score_pct end) as first_score_pct,
            max(case when last_rank = 1 then score_pct end) as last_score_pct,
            count(*) as n_attempts
        from attempts
        group by student_id, course_id
    ) as per_student
    where n_attempts >= 2
    group by course_id

),

per_course as (

    select
        course_id,
        count(*) as n_enrolled,
        sum(case when is_completed then 1 else 0 end) as n_completed,
        sum(case when is_withdrawn then 1 else 0 end) as n_withdrawn,
        sum(case when n_events > 0 then 1 else 0 end) as n_ever_active,
        avg(final_score) as avg_final_score,
        avg(avg_quiz_score_pct) as avg_quiz_score_pct,
        avg(time_on_task_s) / 3600.0 as avg_time_on_task_h
    from enrollments
    group by course_id

),

final as (

    select
        courses.course_id,
        courses.course_code,
        courses.course_title,
        courses.starts_on,
        courses.ends_on,
        coalesce(per_course.n_enrolled, 0) as n_enrolled,
        coalesce(per_course.n_completed, 0) as n_completed,
        coalesce(per_course.n_withdrawn, 0) as n_withdrawn,
        coalesce(per_course.n_ever_active, 0) as n_ever_active,
        per_course.n_completed * 1.0 / nullif(per_course.n_enrolled, 0) as completion_rate,
        per_course.n_withdrawn * 1.0 / nullif(per_course.n_enrolled, 0) as withdrawal_rate,
        per_course.avg_final_score,
        per_course.avg_quiz_score_pct,
        gains.avg_score_gain_pct,
        per_course.avg_time_on_task_h
    from courses
    left join per_course on courses.course_id = per_course.course_id
    left join gains on courses.course_id = gains.course_id

)

select * from final
