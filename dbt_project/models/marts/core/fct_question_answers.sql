{# One row per answered question (question_answer events), with its topic, quiz and chapter. #}
with

answers as (

    select * from {{ ref('fct_events') }}
    where event_type = 'question_answer'

),

questions as (

    select * from {{ ref('stg_lms__questions') }}

),

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

final as (

    select
        answers.event_id,
        answers.student_id,
        answers.course_id,
        answers.question_id,
        answers.quiz_id,
        quizzes.chapter_id,
        coalesce(answers.topic_id, questions.topic_id) as topic_id,
        answers.attempt_id,
        answers.occurred_at as answered_at,
        answers.event_date as answered_on,
        coalesce(answers.is_correct, false) as is_correct,
        answers.answer_points,
        questions.max_points,
        answers.answer_time_s,
        questions.reading_time_s
    from answers
    left join questions on answers.question_id = questions.question_id
    left join quizzes on answers.quiz_id = quizzes.quiz_id

)

select * from final
