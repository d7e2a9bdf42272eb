{#
    The chapters each student has reached: one row per student and chapter holding any of the
    student's events (the events that name a chapter). What rpt_chapter_dropoff counts, kept
    incrementally so the report never reads all events again.

    Incremental: a run reads the events loaded since the newest one here, minus the events
    lookback (as fct_events does), and merges their (student, chapter) pairs on that key. A
    student never un-reaches a chapter, so nothing else can change; `loaded_at` (the newest load
    among the pair's events) is where the next run starts reading. A pair read again (lookback,
    replay) replaces itself with a `loaded_at` no older than before: the batch holds every event
    loaded since the old one.
#}
{{
    config(
        materialized='incremental',
        unique_key=['student_id', 'chapter_id'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['student_id', 'chapter_id'], 'unique': true}, {'columns': ['loaded_at']}],
    )
}}

with

events as (

    select
        student_id,
        chapter_id,
        loaded_at
    from {{ ref('fct_events') }}
    where chapter_id is not null
    {% if is_incremental() %}
        and loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
    {% endif %}

),

final as (

    select
        student_id,
        chapter_id,
        max(loaded_at) as loaded_at
    from events
    group by student_id, chapter_id

)

select * from final
