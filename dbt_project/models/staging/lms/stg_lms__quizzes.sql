with

source as (

    select * from {{ source('lms', 'oltp_quizzes') }}

),

renamed as (

    select
        quiz_id,
        chapter_id,
        title as quiz_title,
        cast(time_limit_s as {{ dbt.type_int() }}) as time_limit_s,
        cast(pass_pct as {{ type_double() }}) as pass_pct,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        cast(_snapshot_at as {{ type_timestamptz() }}) as snapshot_at
    from source

)

select * from renamed
