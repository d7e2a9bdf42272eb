{#
    Admin: drop-off by chapter. How many enrolled students reached each chapter (any event in
    it), and the share lost since the previous chapter. The students per chapter come from the
    incremental int_student_chapters_reached, so this small table is rebuilt whole on every run.
#}
with

chapters as (

    select * from {{ ref('dim_chapter') }}

),

reached as (

    -- one row per student and chapter reached (incremental), so a count is a distinct count
    select
        chapter_id,
        count(*) as n_students_reached
    from {{ ref('int_student_chapters_reached') }}
    group by chapter_id

),

enrolled as (

    select course_id, count(*) as n_enrolled
    from {{ ref('fct_enrollments') }}
    group by course_id

),

joined as (

    select
        chapters.chapter_id,
        chapters.course_id,
        chapters.chapter_position,
        chapters.chapter_title,
        coalesce(enrolled.n_enrolled, 0) as n_enrolled,
        coalesce(reached.n_students_reached, 0) as n_students_reached
    from chapters
    left join reached on chapters.chapter_id = reached.chapter_id
    left join enrolled on chapters.course_id = enrolled.course_id

),

final as (

    select
        chapter_id,
        course_id,
        chapter_position,
        chapter_title,
        n_enrolled,
        n_students_reached,
        n_students_reached * 1.0 / nullif(n_enrolled, 0) as reached_share,
        lag(n_students_reached) over (partition by course_id order by chapter_position)
            as n_students_reached_previous,
        1 - n_students_reached * 1.0 / nullif(
            lag(n_students_reached) over (partition by course_id order by chapter_position), 0
        ) as dropoff_share
    from joined

)

select * from final
