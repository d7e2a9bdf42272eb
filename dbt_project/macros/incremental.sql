{#
    The incremental strategy of the models merged on a unique key, in one place: MERGE on
    BigQuery, delete+insert elsewhere (PostgreSQL: the strategy the runs were measured with).
#}
{% macro upsert_strategy() -%}
    {{ return('merge' if target.type == 'bigquery' else 'delete+insert') }}
{%- endmacro %}

{#
    When the dbt invocation writing a row started, as a timestamp: a run stamp that differs
    between any two runs (a watermark taken from the data does not move when no new data came).
#}
{% macro run_stamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00:00' as {{ type_timestamptz() }})
{%- endmacro %}

{#
    The events fact's rows of `event_types` that name a `key_column` (an attempt, a live class):
    on an incremental run only those loaded since the newest one here, minus the events
    lookback (as fct_events re-reads them). The narrow incremental inputs of the marts rebuilt
    whole on every run (int_live_class_moves, int_quiz_attempt_events) select from it, so those
    marts no longer scan every event.
#}
{% macro newly_loaded_events(event_types, key_column) -%}
    select * from {{ ref('fct_events') }}
    where event_type in ('{{ event_types | join("', '") }}')
        and {{ key_column }} is not null
    {% if is_incremental() %}
        and loaded_at >= {{ watermark(this, 'loaded_at', var('events_lookback_hours')) }}
    {% endif %}
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
