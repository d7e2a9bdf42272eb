{#
    One row per live class and enrolled student: whether and how long the student attended.
    Minutes are the union of join→leave intervals clipped to the class's scheduled time; a join
    without a leave counts until the class ends. Present = attended at least
    `live_presence_share` of the class.
#}
with

classes as (

    select * from {{ ref('stg_lms__live_classes') }}

),

enrollments as (

    select * from {{ ref('stg_lms__enrollments') }}

),

-- the join and leave events (kept incrementally: reading them from the events fact scanned
-- every event on every run)
moves as (

    select
        live_class_id,
        student_id,
        event_type,
        occurred_at,
        event_id
    from {{ ref('int_live_class_moves') }}

),

paired as (

    -- each join with the first event after it (a leave closes the interval, a second join
    -- closes it too: the student re-joined without a recorded leave)
    select
        live_class_id,
        student_id,
        event_type,
        occurred_at,
        lead(occurred_at) over (
            partition by live_class_id, student_id order by occurred_at, event_id
        ) as next_at
    from moves

),

intervals as (

    select
        paired.live_class_id,
        paired.student_id,
        min(paired.occurred_at) as first_joined_at,
        sum(
            greatest(
                0,
                {{ seconds_between(
                    'greatest(paired.occurred_at, classes.starts_at)',
                    'least(coalesce(paired.next_at, classes.ends_at), classes.ends_at)'
                ) }}
            )
        ) as attended_s,
        count(*) as n_joins
    from paired
    inner join classes on paired.live_class_id = classes.live_class_id
    where paired.event_type = 'live_class_join'
    group by paired.live_class_id, paired.student_id

),

invited as (

    -- everyone enrolled in the class's course and not withdrawn before it started
    select
        classes.live_class_id,
        classes.course_id,
        classes.teacher_id,
        classes.starts_at,
        classes.ends_at,
        enrollments.student_id
    from classes
    inner join enrollments
        on classes.course_id = enrollments.course_id
        and enrollments.enrolled_at < classes.ends_at
        and (enrollments.withdrawn_at is null or enrollments.withdrawn_at > classes.starts_at)

),

final as (

    select
        {{ dbt.concat(['invited.live_class_id', "'|'", 'invited.student_id']) }} as attendance_id,
        invited.live_class_id,
        invited.course_id,
        invited.teacher_id,
        invited.student_id,
        invited.starts_at as class_starts_at,
        {{ utc_date('invited.starts_at') }} as class_date,
        intervals.first_joined_at,
        coalesce(intervals.n_joins, 0) as n_joins,
        coalesce(intervals.attended_s, 0) / 60.0 as attended_min,
        {{ seconds_between('invited.starts_at', 'invited.ends_at') }} / 60.0 as class_min,
        intervals.first_joined_at is not null as has_joined,
        (
            coalesce(intervals.attended_s, 0)
            >= {{ var('live_presence_share') }} * {{ seconds_between('invited.starts_at', 'invited.ends_at') }}
        ) as is_present
    from invited
    left join intervals
        on invited.live_class_id = intervals.live_class_id
        and invited.student_id = intervals.student_id

)

select * from final
