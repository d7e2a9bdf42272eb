{#
    Per student, course and topic: the answers, the correct ones and the newest answer. What
    rpt_topic_weak_scores compares with the topic's course-wide share, kept incrementally so the
    report no longer aggregates every answer on every run.

    Incremental: a run recomputes, from all their answers, the (student, course, topic) keys of
    the answers loaded since the newest one here, minus the events lookback (as the answers
    fact re-reads them), and merges them on the key; an answer never leaves its key otherwise.
    After a course restructure (a question moved to another topic or quiz: macros/restructure.sql)
    the answers fact re-places past answers, which can move them between keys: the pre-hook then
    empties the table and the run rewrites every key. Answers without a topic have no key here
    (every question has a topic in the LMS). Equal to a full rebuild
    (tests/integration/test_warehouse_incremental.py).
#}
{% set structure = [ref('stg_lms__questions'), ref('stg_lms__quizzes')] %}
{% set state = structure_state(structure) %}
{% set recompute_touched = is_incremental() and not state.restructured %}
{{
    config(
        materialized='incremental',
        unique_key=['student_id', 'course_id', 'topic_id'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['student_id', 'course_id', 'topic_id'], 'unique': true},
            {'columns': ['loaded_at']},
        ],
        pre_hook="{{ delete_all_if_restructured([ref('stg_lms__questions'), ref('stg_lms__quizzes')]) }}",
    )
}}

-- the CTEs in the if below are top-level ones, not nested in it
-- sqlfluff:indentation:template_blocks_indent:False

with

-- the newest course structure update this run has seen
structure as (

    select {{ state.newest }} as structure_updated_at

),

{% if recompute_touched %}

-- the keys of the answers loaded since the last run here
touched as (

    select distinct
        student_id,
        course_id,
        topic_id
    from {{ ref('fct_question_answers') }}
    where loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
        and topic_id is not null

),

-- all the answers of those keys (one index range per key)
answers as (

    {{ rows_by_key(ref('fct_question_answers'), 'touched', ['student_id', 'course_id', 'topic_id']) }}

),

{% else %}

answers as (

    select * from {{ ref('fct_question_answers') }}
    where topic_id is not null

),

{% endif %}

per_key as (

    select
        student_id,
        course_id,
        topic_id,
        count(*) as n_answers,
        sum(case when is_correct then 1 else 0 end) as n_correct,
        max(answered_at) as last_answered_at,
        max(loaded_at) as loaded_at
    from answers
    group by student_id, course_id, topic_id

),

final as (

    select
        per_key.*,
        structure.structure_updated_at
    from per_key
    cross join structure

)

select * from final
