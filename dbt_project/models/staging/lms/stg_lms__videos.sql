with

source as (

    select * from {{ source('lms', 'oltp_videos') }}

),

renamed as (

    select
        video_id,
        chapter_id,
        title as video_title,
        cast(duration_s as {{ dbt.type_int() }}) as duration_s,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
