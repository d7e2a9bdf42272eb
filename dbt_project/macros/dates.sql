{#
    Small date helpers missing from dbt's cross-database set.
#}

{# Whole days from one date to another (end - start), as an integer. #}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'lms_platform')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    date_diff(cast({{ end_date }} as date), cast({{ start_date }} as date), day)
{%- endmacro %}

{% macro postgres__days_between(start_date, end_date) -%}
    (cast({{ end_date }} as date) - cast({{ start_date }} as date))
{%- endmacro %}

{# A date plus a number of days, as a date. #}
{% macro add_days(date_expr, days) -%}
    {{ return(adapter.dispatch('add_days', 'lms_platform')(date_expr, days)) }}
{%- endmacro %}

{% macro default__add_days(date_expr, days) -%}
    date_add(cast({{ date_expr }} as date), interval {{ days }} day)
{%- endmacro %}

{% macro postgres__add_days(date_expr, days) -%}
    (cast({{ date_expr }} as date) + {{ days }})
{%- endmacro %}

{# Seconds between two timestamps, as a float. #}
{% macro seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('seconds_between', 'lms_platform')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro default__seconds_between(start_ts, end_ts) -%}
    (timestamp_diff({{ end_ts }}, {{ start_ts }}, microsecond) / 1000000.0)
{%- endmacro %}

{% macro postgres__seconds_between(start_ts, end_ts) -%}
    extract(epoch from ({{ end_ts }} - {{ start_ts }}))
{%- endmacro %}

{# The UTC date of a timestamp. #}
{% macro utc_date(ts) -%}
    {{ return(adapter.dispatch('utc_date', 'lms_platform')(ts)) }}
{%- endmacro %}

{% macro default__utc_date(ts) -%}
    date({{ ts }})
{%- endmacro %}

{% macro postgres__utc_date(ts) -%}
    cast(({{ ts }} at time zone 'UTC') as date)
{%- endmacro %}

{# ISO day of week (1 = Monday) and hour of a UTC timestamp. #}
{% macro iso_dow(ts) -%}
    {{ return(adapter.dispatch('iso_dow', 'lms_platform')(ts)) }}
{%- endmacro %}

{% macro default__iso_dow(ts) -%}
    (mod(extract(dayofweek from {{ ts }}) + 5, 7) + 1)
{%- endmacro %}

{% macro postgres__iso_dow(ts) -%}
    cast(extract(isodow from ({{ ts }} at time zone 'UTC')) as integer)
{%- endmacro %}

{% macro utc_hour(ts) -%}
    {{ return(adapter.dispatch('utc_hour', 'lms_platform')(ts)) }}
{%- endmacro %}

{% macro default__utc_hour(ts) -%}
    extract(hour from {{ ts }})
{%- endmacro %}

{% macro postgres__utc_hour(ts) -%}
    cast(extract(hour from ({{ ts }} at time zone 'UTC')) as integer)
{%- endmacro %}

{# ISO day of week (1 = Monday) of a date. #}
{% macro date_iso_dow(date_expr) -%}
    {{ return(adapter.dispatch('date_iso_dow', 'lms_platform')(date_expr)) }}
{%- endmacro %}

{% macro default__date_iso_dow(date_expr) -%}
    (mod(extract(dayofweek from {{ date_expr }}) + 5, 7) + 1)
{%- endmacro %}

{% macro postgres__date_iso_dow(date_expr) -%}
    cast(extract(isodow from {{ date_expr }}) as integer)
{%- endmacro %}
