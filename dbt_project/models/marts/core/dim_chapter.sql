with

chapters as (

    select * from {{ ref('stg_lms__chapters') }}

),

videos as (

    select chapter_id, count(*) as n_videos, sum(duration_s) as video_duration_s
    from {{ ref('stg_lms__videos') }}
    group by chapter_id

),

quizzes as (

    select chapter_id, count(*) as n_quizzes
    from {{ ref('stg_lms__quizzes') }}
    group by chapter_id

),

assignments as (

    select chapter_id, count(*) as n_assignments
    from {{ ref('stg_lms__assignments') }}
    group by chapter_id

),

final as (

    select
        chapters.chapter_id,
        chapters.course_id,
        chapters.chapter_position,
        chapters.chapter_title,
        coalesce(videos.n_videos, 0) as n_videos,
        coalesce(videos.video_duration_s, 0) as video_duration_s,
        coalesce(quizzes.n_quizzes, 0) as n_quizzes,
        coalesce(assignments.n_assignments, 0) as n_assignments
    from chapters
    left join videos on chapters.chapter_id = videos.chapter_id
    left join quizzes on chapters.chapter_id = quizzes.chapter_id
    left join assignments on chapters.chapter_id = assignments.chapter_id

)

select * from final
