{#
    Chapter-to-chapter moves for next-chapter recommendation: the student's chapter visits in a
    course (page views, video and quiz events that name a chapter) in time order, with runs in
    the same chapter collapsed; every change of chapter is one row. Successful students' paths
    are marked for training (final score at least `success_score`; null while unknown).

    The moves come from the incremental int_chapter_moves; this table only adds the chapters'
    positions and the students' outcomes, which the OLTP may change at any time, so it is
    rebuilt whole on every run.
#}
with

-- the moves themselves (incremental: the part that reads every event)
moves as (

    select * from {{ ref('int_chapter_moves') }}

),

chapters as (

    select * from {{ ref('dim_chapter') }}

),

enrollments as (

    select * from {{ ref('stg_lms__enrollments') }}

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            'moves.student_id', "'|'", 'moves.course_id', "'|'", 'moves.from_chapter_id', "'|'",
            'moves.to_chapter_id', "'|'", dbt.safe_cast('moves.transitioned_at', dbt.type_string()),
        ])) }} as transition_id,
        moves.student_id,
        moves.course_id,
        moves.from_chapter_id,
        moves.to_chapter_id,
        moves.transitioned_at,
        from_chapters.chapter_position as from_position,
        to_chapters.chapter_position as to_position,
        to_chapters.chapter_position - from_chapters.chapter_position as position_step,
        enrollments.final_score as student_final_score,
        case
            when enrollments.final_score is not null
                then enrollments.final_score >= {{ var('success_score') }}
            when enrollments.enrollment_status = 'withdrawn' then false
        end as is_successful_student
    from moves
    left join chapters as from_chapters on moves.from_chapter_id = from_chapters.chapter_id
    left join chapters as to_chapters on moves.to_chapter_id = to_chapters.chapter_id
    left join enrollments
        on moves.student_id = enrollments.student_id
        and moves.course_id = enrollments.course_id

)

select * from final
