{#
    Teacher: time spent per module (chapter) and student. Time on task comes from the sessions
    (time until the next event); answers and quiz events without a chapter are placed in their
    quiz's chapter.
#}
with

sessionised as (

    select * from {{ ref('int_events_sessionised') }}

),

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

chapters as (

    select * from {{ ref('dim_chapter') }}

),

placed as (

    select
        sessionised.student_id,
        sessionised.event_type,
        coalesce(sessionised.chapter_id, quizzes.chapter_id) as chapter_id,
        sessionised.time_on_task_s
    from sessionised
    left join quizzes on sessionised.quiz_id = quizzes.quiz_id

),

final as (

    select
        {{ dbt.concat(['placed.student_id', "'|'", 'placed.chapter_id']) }} as student_chapter_id,
        placed.student_id,
        chapters.course_id,
        placed.chapter_id,
        chapters.chapter_position,
        count(*) as n_events,
        sum(placed.time_on_task_s) / 60.0 as time_on_task_min,
        sum(case when placed.event_type like 'video%' then placed.time_on_task_s else 0 end) / 60.0
            as video_min,
        sum(case when placed.event_type in ('page_view', 'scroll_event') then placed.time_on_task_s else 0 end)
        / 60.0 as reading_min,
        sum(
            case
                when placed.event_type like 'quiz%' or placed.event_type = 'question_answer'
                    then placed.time_on_task_s
                else 0
            end
        ) / 60.0 as quiz_min
    from placed
    inner join chapters on placed.chapter_id = chapters.chapter_id
    group by placed.student_id, chapters.course_id, placed.chapter_id, chapters.chapter_position

)

select * from final
