-- What students interact with: videos, quizzes and their questions, assignments, live classes.

create table lms.videos (
    video_id text primary key check (video_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    chapter_id text not null references lms.chapters (chapter_id),
    title text not null,
    duration_s int not null check (duration_s > 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table lms.quizzes (
    quiz_id text primary key check (quiz_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    chapter_id text not null references lms.chapters (chapter_id),
    title text not null,
    time_limit_s int check (time_limit_s > 0),
    pass_pct numeric(5, 2) check (pass_pct between 0 and 100),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table lms.questions (
    question_id text primary key check (question_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    quiz_id text not null references lms.quizzes (quiz_id),
    topic_id text not null references lms.topics (topic_id),
    position int not null check (position >= 1),
    reading_time_s numeric not null check (reading_time_s > 0),
    max_points numeric not null check (max_points > 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table lms.assignments (
    assignment_id text primary key check (assignment_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    chapter_id text not null references lms.chapters (chapter_id),
    title text not null,
    due_at timestamptz not null,
    max_points numeric not null check (max_points > 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table lms.live_classes (
    live_class_id text primary key check (live_class_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    course_id text not null references lms.courses (course_id),
    teacher_id text not null references lms.teachers (teacher_id),
    title text not null,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint live_classes_ends_after_starts check (ends_at > starts_at)
);

create index videos_chapter_id_idx on lms.videos (chapter_id);
create index quizzes_chapter_id_idx on lms.quizzes (chapter_id);
create index questions_quiz_id_idx on lms.questions (quiz_id);
create index questions_topic_id_idx on lms.questions (topic_id);
create index assignments_chapter_id_idx on lms.assignments (chapter_id);
create index live_classes_course_id_idx on lms.live_classes (course_id);
create index live_classes_teacher_id_idx on lms.live_classes (teacher_id);

create index videos_updated_at_idx on lms.videos (updated_at);
create index quizzes_updated_at_idx on lms.quizzes (updated_at);
create index questions_updated_at_idx on lms.questions (updated_at);
create index assignments_updated_at_idx on lms.assignments (updated_at);
create index live_classes_updated_at_idx on lms.live_classes (updated_at);

create trigger videos_set_updated_at
    before update on lms.videos
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger quizzes_set_updated_at
    before update on lms.quizzes
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger questions_set_updated_at
    before update on lms.questions
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger assignments_set_updated_at
    before update on lms.assignments
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

create trigger live_classes_set_updated_at
    before update on lms.live_classes
    for each row when (old.* is distinct from new.*)
    execute function lms.set_updated_at();

comment on column lms.quizzes.time_limit_s is 'Null when the quiz is untimed.';
comment on column lms.quizzes.pass_pct is 'Score needed to pass, in % of the maximum; null when ungraded.';
comment on column lms.questions.reading_time_s is
    'The LMS''s estimate of the seconds needed to read the question.';
