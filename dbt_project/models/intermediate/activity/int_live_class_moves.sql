{#
    The live-class join and leave events (about 3 % of all events): what fct_live_class_attendance
    pairs into attended intervals. That mart is rebuilt whole on every run (enrollments and class
    times come from the OLTP, which may change any row); this keeps its events incrementally so
    the rebuild no longer scans every event.

    Incremental: merged on event_id from the newly loaded events (macros/incremental.sql,
    newly_loaded_events). An event never changes once in the events fact (a copy read again is
    the same event), so nothing else can change.
#}
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['live_class_id'] if target.type == 'bigquery' else none),
        indexes=[{'columns': ['event_id'], 'unique': true}, {'columns': ['loaded_at']}],
    )
}}

with

events as (

    {{ newly_loaded_events(['live_class_join', 'live_class_leave'], 'live_class_id') }}

),

final as (

    select
        event_id,
        live_class_id,
        student_id,
        event_type,
        occurred_at,
        loaded_at
    from events

)

select * from final
