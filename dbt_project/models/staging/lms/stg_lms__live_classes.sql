with

source as (

    select * from {{ source('lms', 'oltp_live_classes') }}

),

renamed as (

    select
        live_class_id,
        course_id,
        teacher_id,
        title as live_class_title,
        cast(starts_at as {{ type_timestamptz() }}) as starts_at,
        cast(ends_at as {{ type_timestamptz() }}) as ends_at,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
