{# Live classes: attendance per session (live class). #}
with

attendance as (

    select * from {{ ref('fct_live_class_attendance') }}

),

classes as (

    select * from {{ ref('stg_lms__live_classes') }}

),

final as (

    select
        classes.live_class_id,
        classes.course_id,
        classes.teacher_id,
        classes.live_class_title,
        classes.starts_at,
        classes.ends_at,
        count(attendance.student_id) as n_invited,
        sum(case when attendance.has_joined then 1 else 0 end) as n_joined,
        sum(case when attendance.is_present then 1 else 0 end) as n_present,
        (
            sum(case when attendance.is_present then 1 else 0 end) * 1.0
            / nullif(count(attendance.student_id), 0)
        ) as presence_rate,
        avg(case when attendance.has_joined then attendance.attended_min end) as avg_attended_min
    from classes
    left join attendance on classes.live_class_id = attendance.live_class_id
    group by
        classes.live_class_id, classes.course_id, classes.teacher_id, classes.live_class_title,
        classes.starts_at, classes.ends_at

)

select * from final
