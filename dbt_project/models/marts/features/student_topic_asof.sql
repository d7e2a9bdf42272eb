{#
    Topic mastery rows: one per student, course, topic and weekly as-of date (the dates of
    int_enrollment_asof_dates), for the topics the student has answered before the as-of date
    or answers in the label window after it.

    Features use answers strictly before as_of_date. Labels: the share correct and the number of
    the student's answers on the topic in the `topic_label_days` days after as_of_date; null
    until the window has passed the data horizon (and the share null when there were none).
    The counts come from the incremental int_student_topic_asof_answers; this table only adds
    the topic and decides, against the horizon, which labels are observable.

    Incremental: a row changes only when its counts do (the answers rows written since the last
    run here: a newer `computed_at` than this table's newest) or when the horizon moves across its label_observed_on (each
    row keeps the horizon it was judged against). A run recomputes those rows and merges them
    on the key; the pre-hooks delete rows whose as-of date left the spine and, after a course
    restructure (a topic moved to another chapter: macros/restructure.sql), every row, which
    the run then rewrites. Equal to a full rebuild (tests/integration/test_warehouse_incremental.py).
#}
{% set structure = [ref('stg_lms__topics'), ref('stg_lms__chapters')] %}
{% set state = structure_state(structure) %}
{% set recompute_changed = is_incremental() and not state.restructured and not lacks_column('horizon_date') %}
{{
    config(
        materialized='incremental',
        unique_key=['student_id', 'course_id', 'topic_id', 'as_of_date'],
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=(['student_id', 'course_id'] if target.type == 'bigquery' else none),
        indexes=[
            {'columns': ['student_id', 'course_id', 'topic_id', 'as_of_date'], 'unique': true},
            {'columns': ['computed_at']},
        ],
        pre_hook=[
            "{{ delete_rows_off_the_spine(['student_id', 'course_id', 'as_of_date'], 'computed_at') }}",
            "{{ delete_all_if_restructured([ref('stg_lms__topics'), ref('stg_lms__chapters')]) }}",
        ],
        post_hook="{{ analyze_after_incremental_run('computed_at') }}",
    )
}}

{% set label_days = var('topic_label_days') %}
{#- the last run here (the answers written since are new to it); on an empty table, the start
    of time -#}
{% set last_run = last_stamp(this, 'computed_at') if recompute_changed else none %}

-- depends_on: {{ ref('int_enrollment_asof_dates') }} {{ ref('int_enrollment_asof_extents') }} (the pre-hook's spine)
-- the CTEs in the if below are top-level ones, not nested in it
-- sqlfluff:indentation:template_blocks_indent:False

with

horizon as (

    select {{ horizon_date() }} as horizon_date

),

-- the newest course structure update this run has seen
structure as (

    select {{ state.newest }} as structure_updated_at

),

{% if recompute_changed %}

-- the rows whose label the horizon's move makes observable (or, when it moved back, not)
relabelled as (

    select
        done.student_id,
        done.course_id,
        done.topic_id,
        done.as_of_date
    from {{ this }} as done
    -- the horizon as a scalar, not the CTE: a filter on the scan then, not a join
    where (done.label_observed_on <= done.horizon_date) != (done.label_observed_on <= {{ horizon_date() }})

),

-- the answer counts of the rows to recompute: those written since the last run here (by the
-- computed_at index), and the relabelled ones (one key lookup each); the table itself each
-- time, as a CTE read twice would be materialised whole, without its indexes
per_row as (

    select *
    from {{ ref('int_student_topic_asof_answers') }}
    where computed_at > {{ last_run }}

    union all

    select relabelled_answers.*
    from ({{ rows_by_topic_asof_key(ref('int_student_topic_asof_answers'), 'relabelled') }}) as relabelled_answers
    -- (rows written before answers had a stamp are old ones)
    where relabelled_answers.computed_at is null or relabelled_answers.computed_at <= {{ last_run }}

),

{% else %}

per_row as (

    select * from {{ ref('int_student_topic_asof_answers') }}

),

{% endif %}

topics as (

    select * from {{ ref('dim_topic') }}

),

final as (

    select
        per_row.student_id,
        per_row.course_id,
        per_row.topic_id,
        per_row.as_of_date,
        topics.chapter_id,
        cast(topics.chapter_position as {{ type_double() }}) as f_topic_chapter_position,
        cast(per_row.n_answers as {{ type_double() }}) as f_n_answers,
        cast(per_row.n_correct as {{ type_double() }}) as f_n_correct,
        cast(per_row.n_correct * 1.0 / nullif(per_row.n_answers, 0) as {{ type_double() }})
            as f_share_correct,
        -- shrunk towards one half by two pseudo-answers, so one lucky answer is not mastery
        cast((per_row.n_correct + 1.0) / (per_row.n_answers + 2.0) as {{ type_double() }})
            as f_share_correct_smoothed,
        cast(per_row.n_answers_last_14 as {{ type_double() }}) as f_n_answers_last_14,
        cast(per_row.n_correct_last_14 * 1.0 / nullif(per_row.n_answers_last_14, 0) as {{ type_double() }})
            as f_share_correct_last_14,
        cast(per_row.answer_time_s / nullif(per_row.n_answers, 0) as {{ type_double() }})
            as f_avg_answer_time_s,
        cast(per_row.sum_time_over_reading / nullif(per_row.n_answers, 0) as {{ type_double() }})
            as f_avg_time_over_reading,
        cast(per_row.n_attempts as {{ type_double() }}) as f_n_attempts,
        cast(
            {{ days_between('per_row.last_answered_on', 'per_row.as_of_date') }} as {{ type_double() }}
        ) as f_days_since_last_answer,
        case
            when {{ add_days('per_row.as_of_date', label_days) }} <= horizon.horizon_date
                and per_row.next_n > 0
                then cast(per_row.next_correct * 1.0 / per_row.next_n as {{ type_double() }})
        end as label_next_correct_share,
        case
            when {{ add_days('per_row.as_of_date', label_days) }} <= horizon.horizon_date
                and per_row.next_n > 0
                then cast(per_row.next_n as {{ dbt.type_int() }})
        end as label_next_n,
        {{ add_days('per_row.as_of_date', label_days) }} as label_observed_on,
        horizon.horizon_date,
        {{ run_stamp() }} as computed_at,
        structure.structure_updated_at
    from per_row
    cross join horizon
    cross join structure
    left join topics on per_row.topic_id = topics.topic_id

)

select * from final
