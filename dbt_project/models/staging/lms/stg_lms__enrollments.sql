with

source as (

    select * from {{ source('lms', 'oltp_enrollments') }}

),

renamed as (

    select
        enrollment_id,
        student_id,
        course_id,
        status as enrollment_status,
        cast(enrolled_at as {{ type_timestamptz() }}) as enrolled_at,
        cast(completed_at as {{ type_timestamptz() }}) as completed_at,
        cast(withdrawn_at as {{ type_timestamptz() }}) as withdrawn_at,
        cast(final_score as {{ type_double() }}) as final_score,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
