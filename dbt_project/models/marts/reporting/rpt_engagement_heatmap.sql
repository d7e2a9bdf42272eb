{# Admin: engagement by hour of the week (UTC) and course: events, students, time on task. #}
with

sessionised as (

    select * from {{ ref('int_events_sessionised') }}
    where course_id is not null

),

final as (

    select
        {{ dbt.concat([
            'course_id', "'|'", dbt.safe_cast(iso_dow('occurred_at'), dbt.type_string()), "'|'",
            dbt.safe_cast(utc_hour('occurred_at'), dbt.type_string()),
        ]) }} as heatmap_cell_id,
        course_id,
        {{ iso_dow('occurred_at') }} as iso_day_of_week,
        {{ utc_hour('occurred_at') }} as hour_of_day,
        count(*) as n_events,
        count(distinct student_id) as n_active_students,
        sum(time_on_task_s) / 3600.0 as time_on_task_h
    from sessionised
    group by course_id, {{ iso_dow('occurred_at') }}, {{ utc_hour('occurred_at') }}

)

select * from final
