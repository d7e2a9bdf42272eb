{#
    One row per answered question (question_answer events), with its topic, quiz and chapter.

    Incremental: a run reads the answers among the events loaded since the newest one here,
    minus the events lookback (as fct_events does), and the answers to questions whose question
    or quiz row the LMS updated after the newest update the last run saw (a question moved to
    another topic or quiz; `structure_updated_at`), and merges them on event_id. Everything
    else is unchanged since the last run. The (student, course, topic) index is how
    int_student_topic_scores reads all the answers of the keys a run touches.
#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['event_id'], 'unique': true},
            {'columns': ['loaded_at']},
            {'columns': ['student_id', 'course_id', 'topic_id']},
        ],
    )
}}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

questions as (

    select * from {{ ref('stg_lms__questions') }}

),

quizzes as (

    select * from {{ ref('stg_lms__quizzes') }}

),

-- the newest question or quiz update this run has seen
structure as (

    select max(updated_at) as structure_updated_at
    from (
        select updated_at from questions
        union all
        select updated_at from quizzes
    ) as updates

),

{% if is_incremental() %}

-- questions whose own row or quiz row the LMS updated after the newest update the last run saw
-- (same clock: the OLTP's): their past answers are placed again
restructured as (

    select questions.question_id
    from questions
    left join quizzes on questions.quiz_id = quizzes.quiz_id
    where questions.updated_at > {{ watermark(this, 'structure_updated_at') }}
        or quizzes.updated_at > {{ watermark(this, 'structure_updated_at') }}

),

answers as (

    select new_events.*
    from {{ ref('fct_events') }} as new_events
    where new_events.event_type = 'question_answer'
        and new_events.loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}

    union all

    select old_events.*
    from {{ ref('fct_events') }} as old_events
    inner join restructured on old_events.question_id = restructured.question_id
    where old_events.event_type = 'question_answer'
        and old_events.loaded_at < {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}

),

{% else %}

answers as (

    select * from {{ ref('fct_events') }}
    where event_type = 'question_answer'

),

{% endif %}

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
        questions.reading_time_s,
        answers.loaded_at,
        structure.structure_updated_at
    from answers
    left join questions on answers.question_id = questions.question_id
    left join quizzes on answers.quiz_id = quizzes.quiz_id
    cross join structure

)

select * from final
