{# Pseudonymous: the teacher's id only; names never leave the OLTP database. #}
with

teachers as (

    select * from {{ ref('stg_lms__teachers') }}

),

assignments as (

    select
        teacher_id,
        count(*) as n_courses,
        sum(case when teacher_role = 'lead' then 1 else 0 end) as n_courses_lead
    from {{ ref('stg_lms__course_teachers') }}
    group by teacher_id

),

final as (

    select
        teachers.teacher_id,
        coalesce(assignments.n_courses, 0) as n_courses,
        coalesce(assignments.n_courses_lead, 0) as n_courses_lead,
        teachers.created_at
    from teachers
    left join assignments on teachers.teacher_id = assignments.teacher_id

)

select * from final
