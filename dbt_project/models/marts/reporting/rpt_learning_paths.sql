{#
    Admin: learning paths, the chapter sequences students follow. One row per course and
    chapter-to-chapter move, with how many students made it and how often successful students
    did.
#}
with

transitions as (

    select * from {{ ref('chapter_transitions') }}

),

per_move as (

    select
        course_id,
        from_chapter_id,
        to_chapter_id,
        min(from_position) as from_position,
        min(to_position) as to_position,
        count(*) as n_transitions,
        count(distinct student_id) as n_students,
        avg(case when is_successful_student then 1.0 when is_successful_student = false then 0.0 end)
            as successful_share
    from transitions
    group by course_id, from_chapter_id, to_chapter_id

),

final as (

    select
        {{ dbt.concat(['from_chapter_id', "'>'", 'to_chapter_id']) }} as path_step_id,
        course_id,
        from_chapter_id,
        to_chapter_id,
        from_position,
        to_position,
        to_position - from_position as position_step,
        n_transitions,
        n_students,
        n_transitions * 1.0 / sum(n_transitions) over (partition by from_chapter_id)
            as share_of_moves_from_chapter,
        successful_share
    from per_move

)

select * from final
