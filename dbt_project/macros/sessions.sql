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

{#
    int_chapter_moves' pre-hook on incremental runs: delete each student's moves in a course
    from the first newly loaded visit on (by occurred_at); the run inserts them again as they
    are now. Deleting first matters where a late visit lands in a run of the same chapter or
    between two chapters: a move may no longer exist.
#}
{% macro delete_moves_from_first_new_visit() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stale
        where exists (
            select 1
            from {{ ref('fct_events') }} as new_visits
            where new_visits.student_id = stale.student_id
                and new_visits.course_id = stale.course_id
                and new_visits.occurred_at <= stale.transitioned_at
                and {{ is_chapter_visit('new_visits') }}
                and new_visits.loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
        )
    {%- endif -%}
{%- endmacro %}

{# An event that places a student in a chapter: a page view, video or quiz event naming one. #}
{% macro is_chapter_visit(alias=none) -%}
    {%- set p = alias ~ '.' if alias else '' -%}
    {{ p }}chapter_id is not null
    and {{ p }}course_id is not null
    and ({{ p }}event_type = 'page_view' or {{ p }}event_type like 'video%' or {{ p }}event_type like 'quiz%')
{%- endmacro %}

{#
    int_events_sessionised's anchors on incremental runs: per student of `new_events` (student_id,
    first_new_at), the latest session start here before first_new_at (tail_start_at) and its
    session_number. Elsewhere, one aggregate over the students' earlier rows. On PostgreSQL,
    one step down the (student_id, occurred_at) index per student instead (LATERAL ... LIMIT
    1): the aggregate read every earlier row of every touched student, 1.4 of 5 M rows and
    6 s for a 1 % batch.
#}
{% macro session_anchors(new_events) -%}
    {{ return(adapter.dispatch('session_anchors', 'lms_platform')(new_events)) }}
{%- endmacro %}

{% macro default__session_anchors(new_events) -%}
    select
        done.student_id,
        max(done.session_number) as session_number,
        max(case when done.is_session_start then done.occurred_at end) as tail_start_at
    from {{ this }} as done
    inner join {{ new_events }}
        on done.student_id = {{ new_events }}.student_id
    where done.occurred_at < {{ new_events }}.first_new_at
    group by done.student_id
{%- endmacro %}

{% macro postgres__session_anchors(new_events) -%}
    select
        {{ new_events }}.student_id,
        last_start.session_number,
        last_start.occurred_at as tail_start_at
    from {{ new_events }}
    cross join lateral (
        select
            done.session_number,
            done.occurred_at
        from {{ this }} as done
        where done.student_id = {{ new_events }}.student_id
            and done.occurred_at < {{ new_events }}.first_new_at
            and done.is_session_start
        order by done.occurred_at desc
        limit 1
    ) as last_start
{%- endmacro %}

{#
    int_events_sessionised's tails on incremental runs: the events of each anchored student
    from the anchor session's start on, with the sessions before it. On PostgreSQL as a
    LATERAL subquery the planner may not flatten (OFFSET 0): one (student_id, occurred_at)
    index range per student. As a join, it underestimated how few students a batch touches
    and hashed all 5 M events (6 s) to keep 77 k of them.
#}
{% macro session_tails(anchors) -%}
    {{ return(adapter.dispatch('session_tails', 'lms_platform')(anchors)) }}
{%- endmacro %}

{% macro default__session_tails(anchors) -%}
    select
        fct.*,
        {{ anchors }}.session_number - 1 as sessions_before
    from {{ ref('fct_events') }} as fct
    inner join {{ anchors }}
        on fct.student_id = {{ anchors }}.student_id
        and fct.occurred_at >= {{ anchors }}.tail_start_at
{%- endmacro %}

{% macro postgres__session_tails(anchors) -%}
    select
        fct.*,
        {{ anchors }}.session_number - 1 as sessions_before
    from {{ anchors }}
    cross join lateral (
        select tail.*
        from {{ ref('fct_events') }} as tail
        where tail.student_id = {{ anchors }}.student_id
            and tail.occurred_at >= {{ anchors }}.tail_start_at
        offset 0
    ) as fct
{%- endmacro %}

{#
    The rows of `relation` (student_id, occurred_at) of each student of `starts` (student_id,
    from_at) from from_at on. On PostgreSQL, one (student_id, occurred_at) index range per
    student (LATERAL, OFFSET 0 so it is not flattened into a join: the planner underestimates
    how few students a batch touches and hashes every row of the relation); elsewhere a join.
#}
{% macro rows_from_student_starts(relation, starts) -%}
    {{ return(adapter.dispatch('rows_from_student_starts', 'lms_platform')(relation, starts)) }}
{%- endmacro %}

{% macro default__rows_from_student_starts(relation, starts) -%}
    select from_start.*
    from {{ relation }} as from_start
    inner join {{ starts }}
        on from_start.student_id = {{ starts }}.student_id
        and from_start.occurred_at >= {{ starts }}.from_at
{%- endmacro %}

{% macro postgres__rows_from_student_starts(relation, starts) -%}
    select from_start.*
    from {{ starts }}
    cross join lateral (
        select each_row.*
        from {{ relation }} as each_row
        where each_row.student_id = {{ starts }}.student_id
            and each_row.occurred_at >= {{ starts }}.from_at
        offset 0
    ) as from_start
{%- endmacro %}

{#
    The models kept per student and UTC day from int_events_sessionised (the hourly chapter
    rows) recompute, on an incremental run, per student with rows touched since
    the last run here (newer `sessionised_at`), every day from the first to the last touched
    one: `first_day` and `last_day`, and a time range a day wider each side (`from_at`,
    `until_at`) to read that stretch by (rows_on_touched_days).
#}
{% macro touched_student_days() -%}
    select
        student_id,
        min(event_date) as first_day,
        max(event_date) as last_day,
        {{ dbt.dateadd('day', -1, 'min(occurred_at)') }} as from_at,
        {{ dbt.dateadd('day', 1, 'max(occurred_at)') }} as until_at
    from {{ ref('int_events_sessionised') }}
    where sessionised_at > {{ watermark(this, 'sessionised_at') }}
    group by student_id
{%- endmacro %}

{#
    The rows of `relation` (student_id, occurred_at, event_date) on the touched days of
    `touched` (touched_student_days). On PostgreSQL one index range per student, as above, in
    one LATERAL: joined to `touched` a second time, the planner (which expects one touched
    student) nested the two and read every student's range once per student.
#}
{% macro rows_on_touched_days(relation, touched) -%}
    {{ return(adapter.dispatch('rows_on_touched_days', 'lms_platform')(relation, touched)) }}
{%- endmacro %}

{% macro default__rows_on_touched_days(relation, touched) -%}
    select on_day.*
    from {{ relation }} as on_day
    inner join {{ touched }}
        on on_day.student_id = {{ touched }}.student_id
        and on_day.event_date >= {{ touched }}.first_day
        and on_day.event_date <= {{ touched }}.last_day
{%- endmacro %}

{% macro postgres__rows_on_touched_days(relation, touched) -%}
    select on_day.*
    from {{ touched }}
    cross join lateral (
        select each_row.*
        from {{ relation }} as each_row
        where each_row.student_id = {{ touched }}.student_id
            and each_row.occurred_at >= {{ touched }}.from_at
            and each_row.occurred_at < {{ touched }}.until_at
            and each_row.event_date >= {{ touched }}.first_day
            and each_row.event_date <= {{ touched }}.last_day
        offset 0
    ) as on_day
{%- endmacro %}
