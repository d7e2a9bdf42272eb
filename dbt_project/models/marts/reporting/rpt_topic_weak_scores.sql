{#
    Teacher: topic-wise weak scores. One row per student and topic answered, with the student's
    share correct against the course's share on the same topic; weak = at least three answers
    and under 50 % correct, or 20 points under the topic's course average.
#}
with

answers as (

    select * from {{ ref('fct_question_answers') }}

),

topics as (

    select * from {{ ref('dim_topic') }}

),

per_student as (

    select
        student_id,
        course_id,
        topic_id,
        count(*) as n_answers,
        sum(case when is_correct then 1 else 0 end) as n_correct,
        max(answered_at) as last_answered_at
    from answers
    group by student_id, course_id, topic_id

),

per_topic as (

    select
        topic_id,
        sum(case when is_correct then 1 else 0 end) * 1.0 / count(*) as topic_share_correct
    from answers
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
