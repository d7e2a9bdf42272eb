{#
    Teacher: students at risk in their active courses, as of the data horizon.

    Rules (always): inactive for `at_risk_inactive_days` days or more (weighs two), average quiz
    score under `at_risk_quiz_pct`, activity halved week on week, or chapter progress a quarter
    of the course behind the calendar. Two points or more is high risk, one is medium.
    Model scores (once the ML flows have written ml.student_course_scores): the latest score per
    student and course is joined in, and its risk band wins over the rules' band. The relation is
    looked up at run time, so this model builds before any model exists.
#}
{%- set ml_scores = none -%}
{%- if execute -%}
    {%- set ml_scores = adapter.get_relation(
        database=target.database,
        schema=var('ml_schema', 'ml'),
        identifier='student_course_scores',
    ) -%}
{%- endif %}

with

enrollments as (

    select * from {{ ref('fct_enrollments') }}
    where enrollment_status = 'active'

),

courses as (

    select * from {{ ref('dim_course') }}

),

daily as (

    select * from {{ ref('int_student_course_daily') }}

),

horizon as (

    select {{ horizon_date() }} as as_of_date

),

recent as (

    select
        daily.student_id,
        daily.course_id,
        sum(
            case when daily.activity_date >= {{ add_days('horizon.as_of_date', -7) }} then daily.n_events else 0 end
        ) as n_events_last_7,
        sum(
            case
                when daily.activity_date >= {{ add_days('horizon.as_of_date', -14) }}
                    and daily.activity_date < {{ add_days('horizon.as_of_date', -7) }}
                    then daily.n_events
                else 0
            end
        ) as n_events_prev_7
    from daily
    cross join horizon
    where daily.activity_date < horizon.as_of_date
    group by daily.student_id, daily.course_id

),

{% if ml_scores is not none %}
latest_scores as (

    select
        student_id,
        course_id,
        as_of_date as scored_as_of_date,
        dropout_risk,
        risk_band,
        predicted_final_score,
        dropout_model_version,
        scored_at,
        row_number() over (
            partition by student_id, course_id order by as_of_date desc, scored_at desc
        ) as score_rank
    from {{ ml_scores }}

),
{% endif %}

flagged as (

    select
        enrollments.enrollment_id,
        enrollments.student_id,
        enrollments.course_id,
        horizon.as_of_date,
        enrollments.last_active_on,
        {% set last_seen = 'coalesce(enrollments.last_active_on, ' ~ utc_date('enrollments.enrolled_at') ~ ')' %}
        {{ days_between(last_seen, 'horizon.as_of_date') }} as days_inactive,
        coalesce(recent.n_events_last_7, 0) as n_events_last_7,
        coalesce(recent.n_events_prev_7, 0) as n_events_prev_7,
        enrollments.avg_quiz_score_pct,
        enrollments.share_correct,
        coalesce(enrollments.max_chapter_position, 0) * 1.0 / nullif(courses.n_chapters, 0)
            as chapter_progress_share,
        greatest(
            0,
            least(
                1,
                {{ days_between('courses.starts_on', 'horizon.as_of_date') }} * 1.0
                / nullif(courses.course_length_days, 0)
            )
        ) as course_elapsed_share
    from enrollments
    cross join horizon
    inner join courses on enrollments.course_id = courses.course_id
    left join recent
        on enrollments.student_id = recent.student_id
        and enrollments.course_id = recent.course_id

),

rules as (

    select
        *,
        days_inactive >= {{ var('at_risk_inactive_days') }} as is_inactive,
        coalesce(avg_quiz_score_pct < {{ var('at_risk_quiz_pct') }}, false) as is_low_scoring,
        n_events_prev_7 >= 5 and n_events_last_7 < 0.5 * n_events_prev_7 as is_declining,
        coalesce(chapter_progress_share < course_elapsed_share - 0.25, false) as is_behind
    from flagged

),

scored as (

    select
        *,
        (case when is_inactive then 2 else 0 end)
        + (case when is_low_scoring then 1 else 0 end)
        + (case when is_declining then 1 else 0 end)
        + (case when is_behind then 1 else 0 end) as rule_points
    from rules

),

final as (

    select
        {{ dbt.concat(['scored.student_id', "'|'", 'scored.course_id']) }} as student_course_id,
        scored.student_id,
        scored.course_id,
        scored.enrollment_id,
        scored.as_of_date,
        scored.last_active_on,
        scored.days_inactive,
        scored.n_events_last_7,
        scored.n_events_prev_7,
        scored.avg_quiz_score_pct,
        scored.share_correct,
        scored.chapter_progress_share,
        scored.course_elapsed_share,
        scored.is_inactive,
        scored.is_low_scoring,
        scored.is_declining,
        scored.is_behind,
        scored.rule_points,
        case
            when scored.rule_points >= 2 then 'high'
            when scored.rule_points = 1 then 'medium'
            else 'low'
        end as rule_risk_band,
        {% if ml_scores is not none %}
            cast(ml.dropout_risk as {{ type_double() }}) as ml_dropout_risk,
            cast(ml.risk_band as {{ dbt.type_string() }}) as ml_risk_band,
            cast(ml.predicted_final_score as {{ type_double() }}) as ml_predicted_final_score,
            cast(ml.dropout_model_version as {{ dbt.type_string() }}) as ml_model_version,
            cast(ml.scored_at as {{ type_timestamptz() }}) as ml_scored_at,
        {% else %}
            cast(null as {{ type_double() }}) as ml_dropout_risk,
            cast(null as {{ dbt.type_string() }}) as ml_risk_band,
            cast(null as {{ type_double() }}) as ml_predicted_final_score,
            cast(null as {{ dbt.type_string() }}) as ml_model_version,
            cast(null as {{ type_timestamptz() }}) as ml_scored_at,
        {% endif %}
        {% set rule_band %}
            case
                when scored.rule_points >= 2 then 'high'
                when scored.rule_points = 1 then 'medium'
                else 'low'
            end
        {% endset %}
        {% if ml_scores is not none %}
            coalesce(ml.risk_band, {{ rule_band }}) as risk_band,
            case when ml.risk_band is not null then 'model' else 'rules' end as risk_source
        {% else %}
            {{ rule_band }} as risk_band,
            'rules' as risk_source
        {% endif %}
    from scored
    {% if ml_scores is not none %}
        left join latest_scores as ml
            on scored.student_id = ml.student_id
            and scored.course_id = ml.course_id
            and ml.score_rank = 1
    {% endif %}

)

select * from final
