{#
    Chapter-to-chapter moves: a student's chapter visits in a course (page views, video and quiz
    events that name a chapter) in time order, runs in the same chapter collapsed; every change
    of chapter is one row, keyed by the event that made it. chapter_transitions adds the
    chapters' positions and the students' outcomes; this is the part that reads every event.

    Incremental: new visits (loaded since the newest move here, minus the events lookback) can
    only change a student's moves in the course from the first of them (by occurred_at) on.
    The pre-hook deletes those moves; the run recomputes them from that student's visits from
    then on, seeded with the chapter the student was in just before: the chapter the last
    earlier move went to (visits after a move and before the next one are all in that chapter).
    A student with no earlier move is recomputed from all their visits in the course. The result
    equals a full rebuild (tests/integration/test_warehouse_incremental.py). A batch whose visits make no
    move leaves `loaded_at` behind, so the next run reads it again: harmless, as the run is
    idempotent.
#}
{{
    config(
        materialized='incremental',
        unique_key='to_event_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['to_event_id'], 'unique': true},
            {'columns': ['student_id', 'course_id', 'transitioned_at']},
            {'columns': ['loaded_at']},
        ],
        pre_hook="{{ delete_moves_from_first_new_visit() }}",
    )
}}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

{% if is_incremental() %}

-- per student and course with newly loaded visits: the first of them (by the loaded_at index)
first_new as (

    select
        student_id,
        course_id,
        min(occurred_at) as first_new_at
    from {{ ref('fct_events') }}
    where {{ is_chapter_visit() }}
        and loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
    group by student_id, course_id

),

-- the last move before it (its chapter is where the student was)
anchors as (

    select
        student_id,
        course_id,
        to_event_id,
        to_chapter_id,
        transitioned_at
    from (
        select
            done.*,
            row_number() over (
                partition by done.student_id, done.course_id
                order by done.transitioned_at desc, done.to_event_id desc
            ) as recency
        from {{ this }} as done
        inner join first_new
            on done.student_id = first_new.student_id
            and done.course_id = first_new.course_id
            and done.transitioned_at < first_new.first_new_at
    ) as earlier
    where recency = 1

),

-- where each student's visits in the course are read from: the first new one, or all of them
-- without an earlier move
starts as (

    select
        first_new.student_id,
        first_new.course_id,
        case
            when anchors.student_id is null then cast('1900-01-01 00:00:00+00' as {{ type_timestamptz() }})
            else first_new.first_new_at
        end as read_from
    from first_new
    left join anchors
        on first_new.student_id = anchors.student_id
        and first_new.course_id = anchors.course_id

),

-- per student, the earliest of those: the student's events are read from there (one index
-- range per student), then each course's from its own start
read_ranges as (

    select
        student_id,
        min(read_from) as from_at
    from starts
    group by student_id

),

student_events as (

    {{ rows_from_student_starts(ref('fct_events'), 'read_ranges') }}

),

scope as (

    -- the anchor, as a visit that starts the sequence (it makes no move of its own)
    select
        to_event_id as event_id,
        student_id,
        course_id,
        to_chapter_id as chapter_id,
        transitioned_at as occurred_at,
        cast(null as {{ type_timestamptz() }}) as loaded_at
    from anchors

    union all

    select
        visits.event_id,
        visits.student_id,
        visits.course_id,
        visits.chapter_id,
        visits.occurred_at,
        visits.loaded_at
    from student_events as visits
    inner join starts
        on visits.student_id = starts.student_id
        and visits.course_id = starts.course_id
        and visits.occurred_at >= starts.read_from
    where {{ is_chapter_visit('visits') }}

),

{% else %}

scope as (

    select
        event_id,
        student_id,
        course_id,
        chapter_id,
        occurred_at,
        loaded_at
    from {{ ref('fct_events') }}
    where {{ is_chapter_visit() }}

),

{% endif %}

with_previous as (

    select
        *,
        lag(chapter_id) over (
            partition by student_id, course_id order by occurred_at, event_id
        ) as from_chapter_id
    from scope

),

final as (

    select
        event_id as to_event_id,
        student_id,
        course_id,
        from_chapter_id,
        chapter_id as to_chapter_id,
        occurred_at as transitioned_at,
        loaded_at
    from with_previous
    where from_chapter_id is not null
        and from_chapter_id != chapter_id

)

select * from final
