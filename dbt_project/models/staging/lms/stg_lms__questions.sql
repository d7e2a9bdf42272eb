with

source as (

    select * from {{ source('lms', 'oltp_questions') }}

),

renamed as (

    select
        question_id,
        quiz_id,
        topic_id,
        cast(position as {{ dbt.type_int() }}) as question_position,
        cast(reading_time_s as {{ type_double() }}) as reading_time_s,
        cast(max_points as {{ type_double() }}) as max_points,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
