{#
    Pseudonymous: the student's id, country and enrollment history only. Names, emails (even
    hashed) and birth dates are not in the marts.

    Students seen in events before the OLTP snapshot knows them (a new sign-up between two
    snapshots) are inferred members: a row with is_inferred = true and no attributes yet, so
    every fact keeps its foreign key; the next snapshot fills them in.
#}
with

students as (

    select * from {{ ref('stg_lms__students') }}

),

seen as (

    -- every event sits in exactly one session: the first session's start is the first event,
    -- read from the sessions (a tenth of the events' rows)
    select student_id, min(started_at) as first_seen_at
    from {{ ref('fct_sessions') }}
    group by student_id

),

enrollments as (

    select
        student_id,
        count(*) as n_enrollments,
        sum(case when enrollment_status = 'completed' then 1 else 0 end) as n_completed,
        sum(case when enrollment_status = 'withdrawn' then 1 else 0 end) as n_withdrawn,
        min(enrolled_at) as first_enrolled_at
    from {{ ref('stg_lms__enrollments') }}
    group by student_id

),

known_and_inferred as (

    select
        student_id,
        country_code,
        created_at,
        false as is_inferred
    from students

    union all

    select
        seen.student_id,
        cast(null as {{ dbt.type_string() }}) as country_code,
        seen.first_seen_at as created_at,
        true as is_inferred
    from seen
    left join students on seen.student_id = students.student_id
    where students.student_id is null

),

final as (

    select
        known_and_inferred.student_id,
        known_and_inferred.country_code,
        known_and_inferred.is_inferred,
        coalesce(enrollments.n_enrollments, 0) as n_enrollments,
        coalesce(enrollments.n_completed, 0) as n_completed,
        coalesce(enrollments.n_withdrawn, 0) as n_withdrawn,
        enrollments.first_enrolled_at,
        known_and_inferred.created_at
    from known_and_inferred
    left join enrollments on known_and_inferred.student_id = enrollments.student_id

)

select * from final
