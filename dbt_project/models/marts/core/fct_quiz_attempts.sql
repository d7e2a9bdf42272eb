{#
    One row per quiz attempt: started (quiz_start) and, when submitted, graded (quiz_submit).
    An attempt that never got a submit is an abandoned attempt.
#}
with

-- the attempts' events (kept incrementally: reading them from the events fact scanned every
-- event on every run)
events as (

    select * from {{ ref('int_quiz_attempt_events') }}

),

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

attempts as (

    select
        attempt_id,
        min(student_id) as student_id,
        min(course_id) as course_id,
        min(quiz_id) as quiz_id,
        min(case when event_type = 'quiz_start' then occurred_at end) as started_at,
        max(case when event_type = 'quiz_submit' then occurred_at end) as submitted_at,
        max(case when event_type = 'quiz_submit' then quiz_score end) as score,
        max(case when event_type = 'quiz_submit' then quiz_max_score end) as max_score,
        max(case when event_type = 'quiz_submit' then quiz_n_questions end) as n_questions,
        max(case when event_type = 'quiz_submit' then quiz_n_correct end) as n_correct,
        max(case when event_type = 'quiz_submit' then quiz_duration_s end) as duration_s,
        sum(case when event_type = 'tab_hidden' then 1 else 0 end) as n_tab_hidden
    from events
    group by attempt_id

),

final as (

    select
        attempts.attempt_id,
        attempts.student_id,
        attempts.course_id,
        attempts.quiz_id,
        quizzes.chapter_id,
        attempts.started_at,
        attempts.submitted_at,
        attempts.submitted_at is not null as is_submitted,
        attempts.score,
        attempts.max_score,
        attempts.score / nullif(attempts.max_score, 0) * 100 as score_pct,
        case
            when attempts.submitted_at is null or quizzes.pass_pct is null then null
            else attempts.score / nullif(attempts.max_score, 0) * 100 >= quizzes.pass_pct
        end as is_passed,
        attempts.n_questions,
        attempts.n_correct,
        attempts.duration_s,
        attempts.n_tab_hidden
    from attempts
    left join quizzes on attempts.quiz_id = quizzes.quiz_id

)

select * from final
