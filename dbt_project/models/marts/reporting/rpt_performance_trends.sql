{# Admin: how a course's students perform week by week (activity, time on task, quiz scores). #}
with

daily as (

    select * from {{ ref('int_student_course_daily') }}

),

dates as (

    select * from {{ ref('dim_date') }}

),

final as (

    select
        {{ dbt.concat(['daily.course_id', "'|'", dbt.safe_cast('dates.week_start', dbt.type_string())]) }}
            as course_week_id,
        daily.course_id,
        dates.week_start,
        count(distinct daily.student_id) as n_active_students,
        sum(daily.n_events) as n_events,
        sum(daily.time_on_task_s) / 3600.0 as time_on_task_h,
        sum(daily.time_on_task_s) / 60.0 / nullif(count(distinct daily.student_id), 0)
            as time_on_task_min_per_student,
        sum(daily.n_quiz_submits) as n_quiz_submits,
        sum(daily.sum_quiz_score_pct) / nullif(sum(daily.n_quiz_submits), 0) as avg_quiz_score_pct,
        sum(daily.n_answers) as n_answers,
        sum(daily.n_correct) * 1.0 / nullif(sum(daily.n_answers), 0) as share_correct
    from daily
    inner join dates on daily.activity_date = dates.date_day
    group by daily.course_id, dates.week_start

)

select * from final
