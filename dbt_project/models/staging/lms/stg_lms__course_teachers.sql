with

source as (

    select * from {{ source('lms', 'oltp_course_teachers') }}

),

renamed as (

    select
        course_id,
        teacher_id,
        role as teacher_role,
        {{ dbt.concat(['course_id', "'|'", 'teacher_id']) }} as course_teacher_id,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
