{#
    Admin: teacher performance over the courses each teacher teaches (lead or assistant):
    completion, scores, course ratings and live-class attendance.
#}
with

course_teachers as (

    select * from {{ ref('stg_lms__course_teachers') }}

),

teachers as (

    select * from {{ ref('dim_teacher') }}

),

enrollments as (

    select * from {{ ref('fct_enrollments') }}

),

ratings as (

    -- the daily activity already sums the ratings per course (same figures as the feedback
    -- events, without reading every event again)
    select
        course_id,
        sum(sum_feedback_rating) * 1.0 / nullif(sum(n_feedback_ratings), 0) as avg_course_rating,
        sum(n_feedback_ratings) as n_ratings
    from {{ ref('int_student_course_daily') }}
    group by course_id

),

live as (

    select
        teacher_id,
        count(distinct live_class_id) as n_live_classes,
        avg(case when is_present then 1.0 else 0.0 end) as live_presence_rate
    from {{ ref('fct_live_class_attendance') }}
    group by teacher_id

),

per_teacher as (

    select
        course_teachers.teacher_id,
        count(distinct course_teachers.course_id) as n_courses,
        count(distinct enrollments.student_id) as n_students,
        avg(case when enrollments.is_completed then 1.0 else 0.0 end) as completion_rate,
        avg(case when enrollments.is_withdrawn then 1.0 else 0.0 end) as withdrawal_rate,
        avg(enrollments.final_score) as avg_final_score,
        avg(enrollments.avg_quiz_score_pct) as avg_quiz_score_pct
    from course_teachers
    left join enrollments on course_teachers.course_id = enrollments.course_id
    group by course_teachers.teacher_id

),

teacher_ratings as (

    select
        course_teachers.teacher_id,
        sum(ratings.avg_course_rating * ratings.n_ratings) / nullif(sum(ratings.n_ratings), 0)
            as avg_course_rating
    from course_teachers
    inner join ratings on course_teachers.course_id = ratings.course_id
    group by course_teachers.teacher_id

),

final as (

    select
        teachers.teacher_id,
        coalesce(per_teacher.n_courses, 0) as n_courses,
        coalesce(per_teacher.n_students, 0) as n_students,
        per_teacher.completion_rate,
        per_teacher.withdrawal_rate,
        per_teacher.avg_final_score,
        per_teacher.avg_quiz_score_pct,
        teacher_ratings.avg_course_rating,
        coalesce(live.n_live_classes, 0) as n_live_classes,
        live.live_presence_rate
    from teachers
    left join per_teacher on teachers.teacher_id = per_teacher.teacher_id
    left join teacher_ratings on teachers.teacher_id = teacher_ratings.teacher_id
    left join live on teachers.teacher_id = live.teacher_id

)

select * from final
