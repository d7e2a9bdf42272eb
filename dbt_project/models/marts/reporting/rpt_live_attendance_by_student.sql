{# Live classes: attendance per student and course. #}
with

attendance as (

    select * from {{ ref('fct_live_class_attendance') }}

),

final as (

    select
        {{ dbt.concat(['student_id', "'|'", 'course_id']) }} as student_course_id,
        student_id,
        course_id,
        count(*) as n_live_classes,
        sum(case when has_joined then 1 else 0 end) as n_joined,
        sum(case when is_present then 1 else 0 end) as n_present,
        sum(case when is_present then 1 else 0 end) * 1.0 / count(*) as presence_rate,
        sum(attended_min) as attended_min
    from attendance
    group by student_id, course_id

)

select * from final
