with

source as (

    select * from {{ source('lms', 'oltp_students') }}

),

renamed as (

    select
        student_id,
        country as country_code,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
