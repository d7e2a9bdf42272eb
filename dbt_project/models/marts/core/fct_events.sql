{#
    The events fact: one row per event_id, ever.

    Incremental: a run reads only raw rows loaded since the newest row already here, minus a
    lookback window (`events_lookback_hours`), because a landing transaction that started
    earlier can commit after a later one, and a replay from the lake re-inserts old events with a
    new loaded_at. Rows are merged on event_id (delete+insert on PostgreSQL, MERGE on BigQuery),
    so whatever a run reads twice replaces itself instead of being counted twice. Late events
    need nothing special: they are selected by when they were loaded, not when they happened.

    The merge matches on (event_id, student_id, occurred_at): an event read again is the same
    event, so it has the same student and time (both never null: tested), and on PostgreSQL the
    (student_id, occurred_at) index finds it. There is no index on event_id alone: a random
    UUID's index takes each new row to a different page, and writing those pages (full page
    images in the WAL) was two thirds of a 1 % run's time here (50 k rows: 2.5 s and 250 MB of
    WAL with it, 0.8 s and 37 MB without). Its uniqueness is the `unique` test's.
#}
{{
    config(
        materialized='incremental',
        unique_key=['event_id', 'student_id', 'occurred_at'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        partition_by=({'field': 'occurred_at', 'data_type': 'timestamp', 'granularity': 'day'}
                      if target.type == 'bigquery' else none),
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['loaded_at']},
            {'columns': ['student_id', 'occurred_at']},
            {'columns': ['event_date']},
        ],
    )
}}

with

events as (

    select * from {{ ref('stg_lms__events') }}

    {% if is_incremental() %}
        where loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
    {% endif %}

),

ranked as (

    -- One row per event id even where the raw layer may hold a duplicate (BigQuery streaming
    -- loads are at-least-once): the first landed copy wins.
    select
        *,
        row_number() over (
            partition by event_id order by loaded_at, kafka_partition, kafka_offset
        ) as copy_number
    from events

),

final as (

    select
        event_id,
        event_type,
        schema_version,
        occurred_at,
        received_at,
        {{ utc_date('occurred_at') }} as event_date,
        student_id,
        course_id,
        lms_session_id,
        client_device,
        client_os,
        client_app_version,
        client_network_id,
        chapter_id,
        video_id,
        quiz_id,
        attempt_id,
        question_id,
        topic_id,
        assignment_id,
        live_class_id,
        login_method,
        logout_reason,
        page_type,
        page_path,
        tab_context,
        hidden_s,
        feedback_target_type,
        feedback_target_id,
        feedback_rating,
        scroll_depth_pct,
        visible_s,
        video_position_s,
        video_watched_s,
        seek_from_s,
        seek_to_s,
        video_duration_s,
        is_correct,
        answer_points,
        answer_time_s,
        quiz_score,
        quiz_max_score,
        quiz_n_questions,
        quiz_n_correct,
        quiz_duration_s,
        is_late,
        word_count,
        attachment_count,
        kafka_partition,
        kafka_offset,
        loaded_at,
        {{ seconds_between('occurred_at', 'received_at') }} as arrival_delay_s
    from ranked
    where copy_number = 1

)

select * from final
