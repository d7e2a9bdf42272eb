{#
    Pre-hook of the incremental as-of models: on an incremental run, delete the rows whose
    (key columns) the as-of spine no longer holds (an enrollment withdrawn earlier than the
    last run knew, a course that ends sooner, a lower `as_of_horizon`). A merge only replaces
    the rows a run writes; without this, such rows would stay forever.
#}
{% macro delete_rows_off_the_spine(key_columns) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as done
        where not exists (
            select 1
            from {{ ref('int_enrollment_asof_dates') }} as spine
            where
            {%- for column in key_columns %}
                {% if not loop.first %}and {% endif %}spine.{{ column }} = done.{{ column }}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}

{#
    The incremental as-of models' other half of "what to recompute": the spine rows (alias)
    with nothing in this model yet (new as-of dates, new enrollments).
#}
{% macro not_yet_here(alias, key_columns) -%}
    not exists (
        select 1
        from {{ this }} as done
        where
        {%- for column in key_columns %}
            {% if not loop.first %}and {% endif %}done.{{ column }} = {{ alias }}.{{ column }}
        {%- endfor %}
    )
{%- endmacro %}
