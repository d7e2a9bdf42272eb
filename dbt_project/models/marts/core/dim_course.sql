with

courses as (

    select * from {{ ref('stg_lms__courses') }}

),

chapters as (

    select course_id, count(*) as n_chapters
    from {{ ref('stg_lms__chapters') }}
    group by course_id

),

leads as (

    select course_id, min(teacher_id) as lead_teacher_id
    from {{ ref('stg_lms__course_teachers') }}
    where teacher_role = 'lead'
    group by course_id

),

final as (

    select
        courses.course_id,
        courses.course_code,
        courses.course_title,
        courses.subject,
        courses.course_level,
        courses.starts_on,
        courses.ends_on,
        {{ days_between('courses.starts_on', 'courses.ends_on') }} + 1 as course_length_days,
        coalesce(chapters.n_chapters, 0) as n_chapters,
        leads.lead_teacher_id
    from courses
    left join chapters on courses.course_id = chapters.course_id
    left join leads on courses.course_id = leads.course_id

)

select * from final
