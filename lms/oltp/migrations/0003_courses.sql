-- Courses, their chapters and topics, and who teaches them.

create table lms.courses (
    course_id text primary key check (course_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    code text not null unique,
    title text not null,
    subject text not null,
    level text not null check (level in ('beginner', 'intermediate', 'advanced')),
    starts_on date not null,
    ends_on date not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint courses_ends_on_after_starts_on check (ends_on >= starts_on)
);

create table lms.chapters (
    chapter_id text primary key check (chapter_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    course_id text not null references lms.courses (course_id),
    position int not null check (position >= 1),
    title text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (course_id, position),
    -- Target of the topics foreign key that keeps a topic's chapter inside the topic's course.
    unique (chapter_id, course_id)
);

create table lms.topics (
    topic_id text primary key check (topic_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    course_id text not null references lms.courses (course_id),
    chapter_id text not null,
    name text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (chapter_id, course_id) references lms.chapters (chapter_id, course_id)
);

create table lms.course_teachers (
    course_id text not null references lms.courses (course_id),
    teacher_id text not null references lms.teachers (teacher_id),
    role text not null check (role in ('lead', 'assistant')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (course_id, teacher_id)
);

-- Foreign keys not already the leading column of a primary key or unique constraint
-- (chapters.course_id and course_teachers.course_id are).
create index topics_course_id_idx on lms.topics (course_id);
create index topics_chapter_id_idx on lms.topics (chapter_id);
create index course_teachers_teacher_id_idx on lms.course_teachers (teacher_id);

create index courses_updated_at_idx on lms.courses (updated_at);
create index chapters_updated_at_idx on lms.chapters (updated_at);
create index topics_updated_at_idx on lms.topics (updated_at);
create index course_teachers_updated_at_idx on lms.course_teachers (updated_at);

create trigger courses_set_updated_at
    before update on lms.courses
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger chapters_set_updated_at
    before update on lms.chapters
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger topics_set_updated_at
    before update on lms.topics
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger course_teachers_set_updated_at
    before update on lms.course_teachers
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

comment on column lms.chapters.position is '1-based order of the chapter in its course.';
comment on column lms.topics.chapter_id is 'Chapter that teaches the topic (same course).';
