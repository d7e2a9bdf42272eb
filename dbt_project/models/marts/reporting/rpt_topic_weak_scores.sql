{#
    Teacher: topic-wise weak scores. One row per student and topic answered, with the student's
    share correct against the course's share on the same topic; weak = at least three answers
    and under 50 % correct, or 20 points under the topic's course average.

    Rebuilt whole on every run (any new answer moves its topic's average, so every student's
    flag on that topic), but from the per-student counts int_student_topic_scores keeps
    incrementally, not from every answer.
#}
with

-- per student and topic, kept incrementally (the part that reads every answer)
per_student as (

    select * from {{ ref('int_student_topic_scores') }}

),

topics as (

    select * from {{ ref('dim_topic') }}

),

-- the topic's share over all its answers: the per-student counts summed
per_topic as (

    select
        topic_id,
        sum(n_correct) * 1.0 / sum(n_answers) as topic_share_correct
    from per_student
    group by topic_id

),

final as (

    select
        {{ dbt.concat(['per_student.student_id', "'|'", 'per_student.topic_id']) }} as student_topic_id,
        per_student.student_id,
        per_student.course_id,
        per_student.topic_id,
        topics.topic_name,
        topics.chapter_id,
        per_student.n_answers,
        per_student.n_correct,
        per_student.n_correct * 1.0 / per_student.n_answers as share_correct,
        per_topic.topic_share_correct,
        per_student.last_answered_at,
        per_student.n_answers >= 3
        and (
            per_student.n_correct * 1.0 / per_student.n_answers < 0.5
            or per_student.n_correct * 1.0 / per_student.n_answers < per_topic.topic_share_correct - 0.2
        ) as is_weak
    from per_student
    left join per_topic on per_student.topic_id = per_topic.topic_id
    left join topics on per_student.topic_id = topics.topic_id

)

select * from final
