with

source as (

    select * from {{ source('lms', 'oltp_courses') }}

),

renamed as (

    select
        course_id,
        code as course_code,
        title as course_title,
        subject,
        level as course_level,
        cast(starts_on as date) as starts_on,
        cast(ends_on as date) as ends_on,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
