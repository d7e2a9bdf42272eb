{#
    Per enrollment, the first and last date of its as-of spine (int_enrollment_asof_dates) and
    `shrunk_at`: when a run last found that the spine lost some of the enrollment's dates.

    Why: the incremental as-of models delete their rows whose date left the spine (an
    enrollment withdrawn earlier than known, a course that ends sooner, a lower horizon, an
    enrollment gone). Checking every row against the spine is a scan of the whole model on every
    run (~2 s for student_topic_asof at 1 M rows), while the spine almost only grows. With this
    table a model checks only the enrollments that shrank since its own last run
    (macros/asof.sql).

    An enrollment's as-of dates are every `asof_step_days` days from its first one up to a bound
    (course end, horizon, withdrawal), so they lost none exactly when the first date is the same
    and the last is no earlier. Anything else (a later or earlier first date, an earlier last
    date, no dates left at all) stamps `shrunk_at` with the run's time. Enrollments with no dates
    left keep their row, with null dates.

    Incremental: the spine is small (one row per enrollment and week), so every run compares all
    of it with the previous extents and writes only the rows that changed.
#}
{{
    config(
        materialized='incremental',
        unique_key='enrollment_id',
        incremental_strategy=upsert_strategy(),
        on_schema_change='append_new_columns',
    )
}}

-- the CTEs of the two branches below are top-level ones, not nested in the if
-- sqlfluff:indentation:template_blocks_indent:False

with

current_extents as (

    select
        enrollment_id,
        min(student_id) as student_id,
        min(course_id) as course_id,
        min(as_of_date) as first_as_of_date,
        max(as_of_date) as last_as_of_date
    from {{ ref('int_enrollment_asof_dates') }}
    group by enrollment_id

),

{% if is_incremental() %}

previous_extents as (

    select * from {{ this }}

),

compared as (

    select
        coalesce(latest.enrollment_id, known.enrollment_id) as enrollment_id,
        coalesce(latest.student_id, known.student_id) as student_id,
        coalesce(latest.course_id, known.course_id) as course_id,
        latest.first_as_of_date,
        latest.last_as_of_date,
        case
            -- it had dates, and lost some: a different first date, an earlier last one, or all
            when known.first_as_of_date is not null
                and (
                    latest.enrollment_id is null
                    or latest.first_as_of_date != known.first_as_of_date
                    or latest.last_as_of_date < known.last_as_of_date
                )
                then {{ run_stamp() }}
            else known.shrunk_at
        end as shrunk_at,
        known.enrollment_id is null as is_new,
        -- null-safe: a row without dates on both sides is unchanged
        coalesce(latest.first_as_of_date = known.first_as_of_date, latest.first_as_of_date is null and known.first_as_of_date is null)
        and coalesce(latest.last_as_of_date = known.last_as_of_date, latest.last_as_of_date is null and known.last_as_of_date is null)
            as is_unchanged
    from current_extents as latest
    full outer join previous_extents as known
        on latest.enrollment_id = known.enrollment_id

),

{% else %}

-- a first build: the models reading this check every enrollment once
compared as (

    select
        *,
        {{ run_stamp() }} as shrunk_at,
        true as is_new,
        false as is_unchanged
    from current_extents

),

{% endif %}

final as (

    select
        enrollment_id,
        student_id,
        course_id,
        first_as_of_date,
        last_as_of_date,
        shrunk_at
    from compared
    where is_new or not is_unchanged

)

select * from final
