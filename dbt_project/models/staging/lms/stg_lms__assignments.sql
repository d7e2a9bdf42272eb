with

source as (

    select * from {{ source('lms', 'oltp_assignments') }}

),

renamed as (

    select
        assignment_id,
        chapter_id,
        title as assignment_title,
        cast(due_at as {{ type_timestamptz() }}) as due_at,
        cast(max_points as {{ type_double() }}) as max_points,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
