-- The lms schema and the trigger function every table uses to keep updated_at honest.
-- (The migration runner creates the schema and lms.schema_migrations before running this file.)

create schema if not exists lms;

-- Incremental extraction reads rows by updated_at, so it must move on every real change,
-- whatever the application remembers to set. Rows updated to identical values keep their
-- updated_at (the triggers fire only when a column actually changed).
create or replace function lms.set_updated_at()
returns trigger
language plpgsql
as $$
begin
    new.updated_at = now();
    return new;
end;
$$;

comment on function lms.set_updated_at() is
    'Trigger function: stamps updated_at with the transaction time on every changing update.';
