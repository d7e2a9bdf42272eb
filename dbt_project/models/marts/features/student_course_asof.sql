{#
    Dropout and final-score training and scoring rows: one per enrolled, not-yet-withdrawn
    student-course every `asof_step_days` days (see int_enrollment_asof_dates).

    No leakage: every f_ feature sums activity days strictly before as_of_date and live classes
    held before it; labels look only after it. The activity sums come from the incremental
    int_student_course_asof_activity; this table joins them to the spine and derives the labels
    (which move with the horizon) afresh on every run. Labels stay null until they are observable at
    the data horizon:
      label_dropout = 1 when the enrollment is withdrawn after as_of_date, or when the course
      has ended with no activity from as_of_date to its end; 0 when it ended with activity.
      label_final_score = the enrollment's final score when completed.
#}
{{
    config(
        indexes=[{'columns': ['student_id', 'course_id', 'as_of_date'], 'unique': true}],
    )
}}

with

asof as (

    select * from {{ ref('int_enrollment_asof_dates') }}

),

daily as (

    select * from {{ ref('int_student_course_daily') }}

),

-- the sums of activity before each as-of date (incremental, the expensive half)
activity_before as (

    select * from {{ ref('int_student_course_asof_activity') }}

),

attendance as (

    select * from {{ ref('fct_live_class_attendance') }}

),

live_before as (

    select
        asof.enrollment_id,
        asof.as_of_date,
        count(*) as n_live_classes_held,
        sum(case when attendance.is_present then 1 else 0 end) as n_live_classes_present
    from asof
    inner join attendance
        on asof.student_id = attendance.student_id
        and asof.course_id = attendance.course_id
        and attendance.class_date < asof.as_of_date
    group by asof.enrollment_id, asof.as_of_date

),

activity_until_end as (

    -- the last activity day of the enrollment inside the course, for the dropout label
    select
        asof.enrollment_id,
        max(daily.activity_date) as last_active_in_course_on
    from (select distinct enrollment_id, student_id, course_id, ends_on from asof) as asof
    inner join daily
        on asof.student_id = daily.student_id
        and asof.course_id = daily.course_id
        and daily.activity_date <= asof.ends_on
    group by asof.enrollment_id

),

labelled as (

    select
        asof.*,
        activity_until_end.last_active_in_course_on,
        case
            when asof.withdrawn_on is not null and asof.withdrawn_on < asof.horizon_date then 1
            when asof.ends_on < asof.horizon_date then
                case
                    when activity_until_end.last_active_in_course_on >= asof.as_of_date then 0
                    else 1
                end
        end as label_dropout,
        case
            when asof.withdrawn_on is not null and asof.withdrawn_on < asof.horizon_date
                then asof.withdrawn_on
            when asof.ends_on < asof.horizon_date then asof.ends_on
        end as dropout_observed_on
    from asof
    left join activity_until_end on asof.enrollment_id = activity_until_end.enrollment_id

),

final as (

    select
        labelled.student_id,
        labelled.course_id,
        labelled.as_of_date,
        labelled.enrollment_id,
        cast(labelled.course_day as {{ dbt.type_int() }}) as course_day,
        cast(labelled.course_length_days as {{ dbt.type_int() }}) as course_length_days,

        cast({{ days_between('labelled.enrolled_on', 'labelled.as_of_date') }} as {{ type_double() }})
            as f_days_since_enrollment,
        cast(
            greatest(0, least(1, labelled.course_day * 1.0 / nullif(labelled.course_length_days, 0)))
            as {{ type_double() }}
        ) as f_course_elapsed_share,
        cast(coalesce(a.n_active_days, 0) as {{ type_double() }}) as f_n_active_days,
        cast(coalesce(a.n_active_days_last_7, 0) as {{ type_double() }}) as f_n_active_days_last_7,
        cast(coalesce(a.n_events, 0) as {{ type_double() }}) as f_n_events,
        cast(coalesce(a.n_events_last_7, 0) as {{ type_double() }}) as f_n_events_last_7,
        cast(coalesce(a.n_events_prev_7, 0) as {{ type_double() }}) as f_n_events_prev_7,
        cast(coalesce(a.n_events_last_7, 0) - coalesce(a.n_events_prev_7, 0) as {{ type_double() }})
            as f_events_trend_7,
        cast(coalesce(a.n_session_days, 0) as {{ type_double() }}) as f_n_session_days,
        cast(coalesce(a.time_on_task_s, 0) / 60.0 as {{ type_double() }}) as f_time_on_task_min,
        cast(coalesce(a.time_on_task_s_last_7, 0) / 60.0 as {{ type_double() }})
            as f_time_on_task_min_last_7,
        cast(
            {{ days_between('coalesce(a.last_active_on, labelled.enrolled_on)', 'labelled.as_of_date') }}
            as {{ type_double() }}
        ) as f_days_since_last_active,
        cast(case when a.last_active_on is null then 1 else 0 end as {{ type_double() }}) as f_never_active,
        cast(coalesce(a.n_quiz_submits, 0) as {{ type_double() }}) as f_n_quiz_submits,
        cast(a.sum_quiz_score_pct / nullif(a.n_quiz_submits, 0) as {{ type_double() }}) as f_avg_quiz_score_pct,
        cast(coalesce(a.n_answers, 0) as {{ type_double() }}) as f_n_answers,
        cast(a.n_correct * 1.0 / nullif(a.n_answers, 0) as {{ type_double() }}) as f_share_correct,
        cast(a.answer_time_s / nullif(a.n_answers, 0) as {{ type_double() }}) as f_avg_answer_time_s,
        cast(coalesce(a.n_videos_completed, 0) as {{ type_double() }}) as f_n_videos_completed,
        cast(coalesce(a.video_watched_s, 0) / 60.0 as {{ type_double() }}) as f_video_watched_min,
        cast(coalesce(a.max_chapter_position, 0) as {{ type_double() }}) as f_max_chapter_position,
        cast(
            coalesce(a.max_chapter_position, 0) * 1.0 / nullif(labelled.n_chapters, 0)
            as {{ type_double() }}
        ) as f_chapter_progress_share,
        cast(coalesce(a.n_assignments, 0) as {{ type_double() }}) as f_n_assignments,
        cast(coalesce(a.n_late_assignments, 0) as {{ type_double() }}) as f_n_late_assignments,
        cast(coalesce(a.n_quiz_tab_hidden, 0) as {{ type_double() }}) as f_n_quiz_tab_hidden,
        cast(a.sum_feedback_rating * 1.0 / nullif(a.n_feedback_ratings, 0) as {{ type_double() }})
            as f_avg_feedback_rating,
        cast(coalesce(l.n_live_classes_held, 0) as {{ type_double() }}) as f_n_live_classes_held,
        cast(coalesce(l.n_live_classes_present, 0) as {{ type_double() }}) as f_n_live_classes_present,
        cast(l.n_live_classes_present * 1.0 / nullif(l.n_live_classes_held, 0) as {{ type_double() }})
            as f_live_attendance_share,

        cast(labelled.label_dropout as {{ type_smallint() }}) as label_dropout,
        cast(labelled.final_score as {{ type_double() }}) as label_final_score,
        coalesce(
            labelled.dropout_observed_on,
            case when labelled.final_score is not null then labelled.completed_on end
        ) as label_observed_on
    from labelled
    left join activity_before as a
        on labelled.enrollment_id = a.enrollment_id
        and labelled.as_of_date = a.as_of_date
    left join live_before as l
        on labelled.enrollment_id = l.enrollment_id
        and labelled.as_of_date = l.as_of_date

)

select * from final
