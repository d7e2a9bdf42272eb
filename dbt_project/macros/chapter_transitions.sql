{# chapter_transitions' post-hook that removes the moves a run recomputed away. #}

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
