{#
    The counting half of student_topic_asof: per student, course, topic and as-of date (the
    dates of int_enrollment_asof_dates), the student's answers on the topic before the as-of
    date (features) and in the `topic_label_days` days from it (the label window), for the
    topics answered before the window's end. Whether a label is observable yet depends on the
    horizon, which moves every run: student_topic_asof decides that, not this model.

    Incremental: a row can only change when an answer inside its window [.., as_of_date +
    topic_label_days) arrives. A run recomputes, per student-course with answers loaded since
    the last run here (events loaded within `events_lookback_hours` of the newest one that run
    had seen, as the events fact re-reads them), the as-of dates after the first such answer's
    day minus the label window; plus the spine rows with nothing here yet (new as-of dates and
    enrollments; those still without answers produce no rows). The pre-hook deletes rows whose
    as-of date left the spine. Each row written carries the run's `computed_at`. The result equals a full rebuild
    (tests/integration/test_warehouse_incremental.py).
#}
{{
    config(
        materialized='incremental',
        unique_key=['student_id', 'course_id', 'topic_id', 'as_of_date'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[{'columns': ['student_id', 'course_id', 'as_of_date']}, {'columns': ['computed_at']}],
        pre_hook="{{ delete_rows_off_the_spine(['student_id', 'course_id', 'as_of_date'], 'computed_at') }}",
    )
}}

{% set label_days = var('topic_label_days') %}

-- depends_on: {{ ref('int_enrollment_asof_extents') }} (the pre-hook's shrunk enrollments)

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

spine as (

    select distinct
        student_id,
        course_id,
        as_of_date
    from {{ ref('int_enrollment_asof_dates') }}

),

answers as (

    select * from {{ ref('fct_question_answers') }}

),

-- the newest load this run has seen: the next run re-reads from it, minus the lookback
watermark as (

    select max(loaded_at) as events_watermark
    from {{ ref('fct_events') }}

),

{% if is_incremental() %}

-- per student-course, the first day of an answer loaded since the last run here
arrived as (

    select
        student_id,
        course_id,
        min(event_date) as first_arrived_on
    from {{ ref('fct_events') }}
    where event_type = 'question_answer'
        and loaded_at >= {{ watermark(this, 'events_watermark', var('events_lookback_hours')) }}
    group by student_id, course_id

),

todo as (

    select spine.*
    from spine
    left join arrived
        on spine.student_id = arrived.student_id
        and spine.course_id = arrived.course_id
    where spine.as_of_date > {{ add_days('arrived.first_arrived_on', -1 * label_days) }}
        or {{ not_yet_here('spine', ['student_id', 'course_id', 'as_of_date']) }}

),

{% else %}

todo as (

    select * from spine

),

{% endif %}

final as (

    select
        todo.student_id,
        todo.course_id,
        answers.topic_id,
        todo.as_of_date,
        sum(case when answers.answered_on < todo.as_of_date then 1 else 0 end) as n_answers,
        sum(case when answers.answered_on < todo.as_of_date and answers.is_correct then 1 else 0 end)
            as n_correct,
        sum(
            case
                when answers.answered_on < todo.as_of_date
                    and answers.answered_on >= {{ add_days('todo.as_of_date', -14) }}
                    then 1
                else 0
            end
        ) as n_answers_last_14,
        sum(
            case
                when answers.answered_on < todo.as_of_date
                    and answers.answered_on >= {{ add_days('todo.as_of_date', -14) }}
                    and answers.is_correct
                    then 1
                else 0
            end
        ) as n_correct_last_14,
        sum(case when answers.answered_on < todo.as_of_date then answers.answer_time_s end)
            as answer_time_s,
        sum(
            case
                when answers.answered_on < todo.as_of_date
                    then answers.answer_time_s / nullif(answers.reading_time_s, 0)
            end
        ) as sum_time_over_reading,
        count(distinct case when answers.answered_on < todo.as_of_date then answers.attempt_id end)
            as n_attempts,
        max(case when answers.answered_on < todo.as_of_date then answers.answered_on end)
            as last_answered_on,
        sum(
            case
                when answers.answered_on >= todo.as_of_date
                    and answers.answered_on < {{ add_days('todo.as_of_date', label_days) }}
                    then 1
                else 0
            end
        ) as next_n,
        sum(
            case
                when answers.answered_on >= todo.as_of_date
                    and answers.answered_on < {{ add_days('todo.as_of_date', label_days) }}
                    and answers.is_correct
                    then 1
                else 0
            end
        ) as next_correct,
        max(watermark.events_watermark) as events_watermark,
        -- which rows this run wrote: student_topic_asof recomputes the ones newer than its own
        {{ run_stamp() }} as computed_at
    from todo
    inner join answers
        on todo.student_id = answers.student_id
        and todo.course_id = answers.course_id
        and answers.answered_on < {{ add_days('todo.as_of_date', label_days) }}
    cross join watermark
    group by todo.student_id, todo.course_id, answers.topic_id, todo.as_of_date

)

select * from final
