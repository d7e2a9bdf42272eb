-- Students and teachers: the ONLY tables holding personal data (names, emails, birth dates).
-- Everything else, events included, refers to people by their pseudonymous ids.

create table lms.students (
    student_id text primary key check (student_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    full_name text not null,
    email text not null unique check (position('@' in email) > 1),
    country char(2) check (country ~ '^[A-Z]{2}$'),
    date_of_birth date,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table lms.teachers (
    teacher_id text primary key check (teacher_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    full_name text not null,
    email text not null unique check (position('@' in email) > 1),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index students_updated_at_idx on lms.students (updated_at);
create index teachers_updated_at_idx on lms.teachers (updated_at);

create trigger students_set_updated_at
    before update on lms.students
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger teachers_set_updated_at
    before update on lms.teachers
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

comment on table lms.students is 'Learners. Holds personal data: full_name, email, date_of_birth.';
comment on column lms.students.student_id is 'Pseudonymous id, the student_id of every event.';
comment on column lms.students.full_name is 'PII';
comment on column lms.students.email is 'PII';
comment on column lms.students.date_of_birth is 'PII';
comment on column lms.students.country is 'ISO 3166-1 alpha-2 code.';
comment on table lms.teachers is 'Teaching staff. Holds personal data: full_name, email.';
comment on column lms.teachers.full_name is 'PII';
comment on column lms.teachers.email is 'PII';
