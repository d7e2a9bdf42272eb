{#
    fct_sessions' pre-hook on incremental runs: delete the sessions int_events_sessionised
    re-numbered since fct_sessions last ran (a student's sessions from the first one new events
    touched); the run inserts them again as they are now. Deleting first matters where new
    events joined two sessions: the student's last session number no longer exists.
#}
{% macro fct_sessions_delete_renumbered() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stale
        where exists (
            select 1
            from {{ ref('int_events_sessionised') }} as touched
            where touched.student_id = stale.student_id
                and touched.session_number <= stale.session_number
                and touched.sessionised_at > {{ watermark(this, 'sessionised_at') }}
        )
    {%- endif -%}
{%- endmacro %}
