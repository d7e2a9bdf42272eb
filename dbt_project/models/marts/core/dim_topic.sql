with

topics as (

    select * from {{ ref('stg_lms__topics') }}

),

questions as (

    select topic_id, count(*) as n_questions
    from {{ ref('stg_lms__questions') }}
    group by topic_id

),

chapters as (

    select chapter_id, chapter_position
    from {{ ref('stg_lms__chapters') }}

),

final as (

    select
        topics.topic_id,
        topics.course_id,
        topics.chapter_id,
        chapters.chapter_position,
        topics.topic_name,
        coalesce(questions.n_questions, 0) as n_questions
    from topics
    left join questions on topics.topic_id = questions.topic_id
    left join chapters on topics.chapter_id = chapters.chapter_id

)

select * from final
