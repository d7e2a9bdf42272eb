with

source as (

    select * from {{ source('lms', 'oltp_topics') }}

),

renamed as (

    select
        topic_id,
        course_id,
        chapter_id,
        name as topic_name,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
