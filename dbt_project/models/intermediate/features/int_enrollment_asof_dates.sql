{#
    The as-of spine of the ML feature marts: for every enrollment, one date every
    `asof_step_days` days after the enrollment day, up to the course's end or the data horizon,
    while the enrollment is not yet withdrawn.

    The data horizon is the day after the newest event (or the `as_of_horizon` var): as-of dates
    past it would describe days the warehouse has not seen yet, and labels are only observable
    up to it. On a live platform it is today; on a replayed or simulated school it is the end of
    the data.
#}
{{ config(materialized='table') }}

with

enrollments as (

    select * from {{ ref('stg_lms__enrollments') }}

),

courses as (

    select * from {{ ref('dim_course') }}

),

horizon as (

    select {{ horizon_date() }} as horizon_date

),

steps as (

    {{ integer_spine(1, 104, 'step') }}

),

spine as (

    select
        enrollments.enrollment_id,
        enrollments.student_id,
        enrollments.course_id,
        {{ add_days(utc_date('enrollments.enrolled_at'), 'steps.step * ' ~ var('asof_step_days')) }}
            as as_of_date,
        {{ utc_date('enrollments.enrolled_at') }} as enrolled_on,
        {{ utc_date('enrollments.withdrawn_at') }} as withdrawn_on,
        {{ utc_date('enrollments.completed_at') }} as completed_on,
        enrollments.final_score,
        courses.starts_on,
        courses.ends_on,
        courses.course_length_days,
        courses.n_chapters,
        horizon.horizon_date
    from enrollments
    inner join courses on enrollments.course_id = courses.course_id
    cross join steps
    cross join horizon

),

final as (

    select
        enrollment_id,
        student_id,
        course_id,
        as_of_date,
        {{ days_between('starts_on', 'as_of_date') }} as course_day,
        course_length_days,
        n_chapters,
        enrolled_on,
        withdrawn_on,
        completed_on,
        final_score,
        starts_on,
        ends_on,
        horizon_date
    from spine
    where as_of_date <= ends_on
        and as_of_date <= horizon_date
        -- still enrolled on the as-of date: withdrawn later, or never
        and (withdrawn_on is null or withdrawn_on >= as_of_date)

)

select * from final
