{#
    Empirical difficulty per question from every answer seen: share correct, response time, and
    a smoothed logit of the error rate (one pseudo-answer each way, so a question with few
    answers sits near 0 rather than at ±infinity). Higher = harder. Questions nobody answered
    yet have n_answers = 0 and a logit of 0.
#}
with

questions as (

    select * from {{ ref('stg_lms__questions') }}

),

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

chapters as (

    select * from {{ ref('stg_lms__chapters') }}

),

answers as (

    select
        question_id,
        count(*) as n_answers,
        sum(case when is_correct then 1 else 0 end) as n_correct,
        avg(answer_time_s) as avg_response_s
    from {{ ref('fct_question_answers') }}
    group by question_id

),

final as (

    select
        questions.question_id,
        questions.quiz_id,
        chapters.course_id,
        quizzes.chapter_id,
        questions.topic_id,
        cast(coalesce(answers.n_answers, 0) as {{ dbt.type_int() }}) as n_answers,
        cast(answers.n_correct * 1.0 / nullif(answers.n_answers, 0) as {{ type_double() }}) as p_correct,
        cast(answers.avg_response_s as {{ type_double() }}) as avg_response_s,
        cast(
            ln(
                (coalesce(answers.n_answers, 0) - coalesce(answers.n_correct, 0) + 1.0)
                / (coalesce(answers.n_correct, 0) + 1.0)
            ) as {{ type_double() }}
        ) as f_difficulty_logit,
        questions.reading_time_s
    from questions
    left join quizzes on questions.quiz_id = quizzes.quiz_id
    left join chapters on quizzes.chapter_id = chapters.chapter_id
    left join answers on questions.question_id = answers.question_id

)

select * from final
