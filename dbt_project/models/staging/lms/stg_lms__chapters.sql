with

source as (

    select * from {{ source('lms', 'oltp_chapters') }}

),

renamed as (

    select
        chapter_id,
        course_id,
        cast(position as {{ dbt.type_int() }}) as chapter_position,
        title as chapter_title,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
