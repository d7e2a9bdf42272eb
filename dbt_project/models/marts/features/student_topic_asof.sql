{#
    Topic mastery rows: one per student, course, topic and weekly as-of date (the dates of
    int_enrollment_asof_dates), for the topics the student has answered before the as-of date
    or answers in the label window after it.

    Features use answers strictly before as_of_date. Labels: the share correct and the number of
    the student's answers on the topic in the `topic_label_days` days after as_of_date; null
    until the window has passed the data horizon (and the share null when there were none).
    The counts come from the incremental int_student_topic_asof_answers; this table only adds
    the topic and decides, against the horizon of this run, which labels are observable.
#}
{{ config(indexes=[{'columns': ['student_id', 'course_id', 'topic_id', 'as_of_date'], 'unique': true}]) }}

{% set label_days = var('topic_label_days') %}

with

-- the answer counts per row (incremental, the expensive half)
per_row as (

    select * from {{ ref('int_student_topic_asof_answers') }}

),

horizon as (

    select {{ horizon_date() }} as horizon_date

),

topics as (

    select * from {{ ref('dim_topic') }}

),

final as (

    select
        per_row.student_id,
        per_row.course_id,
        per_row.topic_id,
        per_row.as_of_date,
        topics.chapter_id,
        cast(topics.chapter_position as {{ type_double() }}) as f_topic_chapter_position,
        cast(per_row.n_answers as {{ type_double() }}) as f_n_answers,
        cast(per_row.n_correct as {{ type_double() }}) as f_n_correct,
        cast(per_row.n_correct * 1.0 / nullif(per_row.n_answers, 0) as {{ type_double() }})
            as f_share_correct,
        -- shrunk towards one half by two pseudo-answers, so one lucky answer is not mastery
        cast((per_row.n_correct + 1.0) / (per_row.n_answers + 2.0) as {{ type_double() }})
            as f_share_correct_smoothed,
        cast(per_row.n_answers_last_14 as {{ type_double() }}) as f_n_answers_last_14,
        cast(per_row.n_correct_last_14 * 1.0 / nullif(per_row.n_answers_last_14, 0) as {{ type_double() }})
            as f_share_correct_last_14,
        cast(per_row.answer_time_s / nullif(per_row.n_answers, 0) as {{ type_double() }})
            as f_avg_answer_time_s,
        cast(per_row.sum_time_over_reading / nullif(per_row.n_answers, 0) as {{ type_double() }})
            as f_avg_time_over_reading,
        cast(per_row.n_attempts as {{ type_double() }}) as f_n_attempts,
        cast(
            {{ days_between('per_row.last_answered_on', 'per_row.as_of_date') }} as {{ type_double() }}
        ) as f_days_since_last_answer,
        case
            when {{ add_days('per_row.as_of_date', label_days) }} <= horizon.horizon_date
                and per_row.next_n > 0
                then cast(per_row.next_correct * 1.0 / per_row.next_n as {{ type_double() }})
        end as label_next_correct_share,
        case
            when {{ add_days('per_row.as_of_date', label_days) }} <= horizon.horizon_date
                and per_row.next_n > 0
                then cast(per_row.next_n as {{ dbt.type_int() }})
        end as label_next_n,
        {{ add_days('per_row.as_of_date', label_days) }} as label_observed_on
    from per_row
    cross join horizon
    left join topics on per_row.topic_id = topics.topic_id

)

select * from final
