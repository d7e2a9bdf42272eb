{#
    Chapter-to-chapter moves for next-chapter recommendation: the student's chapter visits in a
    course (page views, video and quiz events that name a chapter) in time order, with runs in
    the same chapter collapsed; every change of chapter is one row. Successful students' paths
    are marked for training (final score at least `success_score`; null while unknown).

    The moves come from the incremental int_chapter_moves; this table adds the chapters'
    positions and the students' outcomes.

    Incremental: a run rewrites the moves that can have changed since the last run here: per
    (student, course) with moves int_chapter_moves wrote since (a `loaded_at` past this table's
    newest, minus the events lookback, as int_chapter_moves re-reads them), the pair's moves
    from the first of those on (int_chapter_moves recomputes a pair's moves from its first new
    visit, and a visit that makes no move changes no later one); every move of the pairs whose
    enrollment the OLTP updated since (`enrollment_updated_at`: final score, withdrawal). It
    merges them on transition_id; the post-hook deletes the rows in the rewritten stretches it
    did not write again (moves int_chapter_moves recomputed away). After a course restructure
    (a chapter's position changed: macros/restructure.sql) the pre-hook empties the table and
    the run rewrites it. Equal to a full rebuild (tests/integration/test_warehouse_incremental.py).
#}
{% set structure = [ref('stg_lms__chapters')] %}
{% set state = structure_state(structure) %}
{% set rewrite_changed = is_incremental() and not state.restructured
    and not lacks_column('computed_at') and not lacks_column('structure_updated_at') %}
{{
    config(
        materialized='incremental',
        unique_key='transition_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['transition_id'], 'unique': true},
            {'columns': ['student_id', 'course_id', 'transitioned_at']},
            {'columns': ['loaded_at']},
            {'columns': ['computed_at']},
        ],
        pre_hook="{{ delete_all_if_restructured([ref('stg_lms__chapters')]) }}",
        post_hook=[
            "{{ delete_transitions_rewritten_away() }}",
            "{{ analyze_after_incremental_run('computed_at') }}",
        ],
    )
}}

-- the CTEs in the if below are top-level ones, not nested in it
-- sqlfluff:indentation:template_blocks_indent:False

with

chapters as (

    select * from {{ ref('dim_chapter') }}

),

enrollments as (

    select * from {{ ref('stg_lms__enrollments') }}

),

-- the newest chapter and enrollment updates this run has seen
stamps as (

    select
        {{ state.newest }} as structure_updated_at,
        (select max(updated_at) from {{ ref('stg_lms__enrollments') }}) as enrollment_updated_at

),

{% if rewrite_changed %}

-- per (student, course) to rewrite, the time from which its moves can have changed: the
-- first move written since the last run here (by the loaded_at index; a new visit that makes
-- no move changes no later move), or the start of time when its outcome in the OLTP
-- enrollments was updated since
changed_pairs as (

    select
        student_id,
        course_id,
        min(rewrite_from) as rewrite_from
    from (
        select
            student_id,
            course_id,
            transitioned_at as rewrite_from
        from {{ ref('int_chapter_moves') }}
        where loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}

        union all

        select
            student_id,
            course_id,
            cast('1900-01-01 00:00:00+00:00' as {{ type_timestamptz() }}) as rewrite_from
        from enrollments
        where updated_at > {{ watermark(this, 'enrollment_updated_at') }}
    ) as starts
    group by student_id, course_id

),

-- those moves (one index range each)
moves as (

    select pair_moves.*
    from ({{ rows_by_key(ref('int_chapter_moves'), 'changed_pairs', ['student_id', 'course_id']) }}) as pair_moves
    inner join changed_pairs
        on pair_moves.student_id = changed_pairs.student_id
        and pair_moves.course_id = changed_pairs.course_id
    where pair_moves.transitioned_at >= changed_pairs.rewrite_from

),

{% else %}

moves as (

    select * from {{ ref('int_chapter_moves') }}

),

{% endif %}

final as (

    select
        {{ dbt.hash(dbt.concat([
            'moves.student_id', "'|'", 'moves.course_id', "'|'", 'moves.from_chapter_id', "'|'",
            'moves.to_chapter_id', "'|'", dbt.safe_cast('moves.transitioned_at', dbt.type_string()),
        ])) }} as transition_id,
        moves.student_id,
        moves.course_id,
        moves.from_chapter_id,
        moves.to_chapter_id,
        moves.transitioned_at,
        from_chapters.chapter_position as from_position,
        to_chapters.chapter_position as to_position,
        to_chapters.chapter_position - from_chapters.chapter_position as position_step,
        enrollments.final_score as student_final_score,
        case
            when enrollments.final_score is not null
                then enrollments.final_score >= {{ var('success_score') }}
            when enrollments.enrollment_status = 'withdrawn' then false
        end as is_successful_student,
        moves.loaded_at,
        {{ run_stamp() }} as computed_at,
        stamps.enrollment_updated_at,
        stamps.structure_updated_at
    from moves
    cross join stamps
    left join chapters as from_chapters on moves.from_chapter_id = from_chapters.chapter_id
    left join chapters as to_chapters on moves.to_chapter_id = to_chapters.chapter_id
    left join enrollments
        on moves.student_id = enrollments.student_id
        and moves.course_id = enrollments.course_id

)

select * from final
