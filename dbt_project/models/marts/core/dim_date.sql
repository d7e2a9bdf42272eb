{#
    One row per calendar day from a month before the first course starts to a month after the
    last one ends (and at least to today), the time spine of the semantic layer.
#}
with

bounds as (

    select
        {{ add_days('min(starts_on)', -31) }} as first_day,
        {{ add_days('max(ends_on)', 31) }} as last_day
    from {{ ref('stg_lms__courses') }}

),

days as (

    {{ date_spine_between(
        "(select coalesce(min(first_day), current_date) from bounds)",
        "(select greatest(coalesce(max(last_day), current_date), current_date) from bounds)",
    ) }}

),

final as (

    select
        date_day,
        cast(extract(year from date_day) as {{ dbt.type_int() }}) as year_number,
        cast(extract(month from date_day) as {{ dbt.type_int() }}) as month_number,
        {{ add_days('date_day', '1 - ' ~ date_iso_dow('date_day')) }} as week_start,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start,
        {{ date_iso_dow('date_day') }} as iso_day_of_week,
        {{ date_iso_dow('date_day') }} >= 6 as is_weekend
    from days

)

select * from final
