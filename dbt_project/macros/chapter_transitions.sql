{#
    chapter_transitions' helpers (the success flag it derives from the enrollments, the
    post-hook that removes moves recomputed away), and the post-hook the incremental feature
    marts share (statistics after a run).
#}

{# Whether the student succeeded in the course: null while unknown, false when withdrawn. #}
{% macro is_successful_student(enrollments) -%}
    case
        when {{ enrollments }}.final_score is not null
            then {{ enrollments }}.final_score >= {{ var('success_score') }}
        when {{ enrollments }}.enrollment_status = 'withdrawn' then false
    end
{%- endmacro %}

{#
    Post-hook: a run rewrites the moves of each (student, course) it recomputes from the time
    they can have changed on, stamped with its run stamp, and merges them on transition_id;
    rows of those pairs from that time on that it did not write again are moves
    int_chapter_moves no longer has (its recomputed tail replaced them), so they go. The
    earliest move the run wrote for a pair is at that time: it is the move that started it.
#}
{% macro delete_transitions_rewritten_away() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stale
        where stale.computed_at < {{ run_stamp() }}
            and exists (
                select 1
                from {{ this }} as fresh
                where fresh.computed_at = {{ run_stamp() }}
                    and fresh.student_id = stale.student_id
                    and fresh.course_id = stale.course_id
                    and fresh.transitioned_at <= stale.transitioned_at
            )
    {%- endif -%}
{%- endmacro %}

{#
    Post-hook of incremental marts with data tests scoped to the latest batch (macros/
    test_scope.sql): on PostgreSQL, refresh the statistics of the stamp column after an
    incremental run. The tests filter on the new stamp, a value the statistics have not seen:
    the planner then expects a handful of rows and joins the batch to the parent table row by
    row (12 s for a relationships test over a 26 k-row batch, 0.1 s with them).
#}
{% macro analyze_after_incremental_run(column) -%}
    {%- if target.type == 'postgres' and is_incremental() -%}
        analyze {{ this }} ({{ column }})
    {%- endif -%}
{%- endmacro %}
