"""The LMS's operational database (lms_oltp): numbered SQL migrations and their runner."""

from lms.oltp.migrate import Migration, MigrationStatus, discover, migrate, status

__all__ = ["Migration", "MigrationStatus", "discover", "migrate", "status"]

# Every OLTP table, parents before children (a load in this order never meets a missing foreign key).
OLTP_TABLES = (
    "teachers",
    "courses",
    "course_teachers",
    "chapters",
    "topics",
    "videos",
    "quizzes",
    "questions",
    "assignments",
    "live_classes",
    "students",
    "enrollments",
)
