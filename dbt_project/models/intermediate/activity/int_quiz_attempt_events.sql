{#
    The events of quiz attempts (quiz_start, quiz_submit, and tab_hidden during an attempt;
    about 4 % of all events): what fct_quiz_attempts groups into attempts. That mart is rebuilt
    whole on every run (a quiz's chapter and pass mark come from the OLTP); this keeps its
    events incrementally, as int_live_class_moves does for live classes.
#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['attempt_id'] if target.type == 'bigquery' else none),
        indexes=[{'columns': ['event_id'], 'unique': true}, {'columns': ['loaded_at']}],
    )
}}

with

events as (

    {{ newly_loaded_events(['quiz_start', 'quiz_submit', 'tab_hidden'], 'attempt_id') }}

),

final as (

    select
        event_id,
        attempt_id,
        student_id,
        course_id,
        quiz_id,
        event_type,
        occurred_at,
        quiz_score,
        quiz_max_score,
        quiz_n_questions,
        quiz_n_correct,
        quiz_duration_s,
        loaded_at
    from events

)

select * from final
