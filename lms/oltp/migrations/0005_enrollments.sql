-- Which student takes which course, and how it ended.

create table lms.enrollments (
    enrollment_id text primary key check (enrollment_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    student_id text not null references lms.students (student_id),
    course_id text not null references lms.courses (course_id),
    status text not null default 'active' check (status in ('active', 'completed', 'withdrawn')),
    enrolled_at timestamptz not null,
    completed_at timestamptz,
    withdrawn_at timestamptz,
    final_score numeric(5, 2) check (final_score between 0 and 100),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (student_id, course_id),
    -- The timestamps and the score follow the status, so readers can trust either.
    constraint enrollments_completed_at_iff_completed
        check ((status = 'completed') = (completed_at is not null)),
    constraint enrollments_withdrawn_at_iff_withdrawn
        check ((status = 'withdrawn') = (withdrawn_at is not null)),
    constraint enrollments_final_score_only_when_completed
        check (final_score is null or status = 'completed'),
    constraint enrollments_completed_after_enrolled check (completed_at >= enrolled_at),
    constraint enrollments_withdrawn_after_enrolled check (withdrawn_at >= enrolled_at)
);

-- student_id leads the unique (student_id, course_id) index already.
create index enrollments_course_id_idx on lms.enrollments (course_id);
create index enrollments_updated_at_idx on lms.enrollments (updated_at);

create trigger enrollments_set_updated_at
    before update on lms.enrollments
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

comment on column lms.enrollments.final_score is 'Final grade 0..100, set when completed.';
