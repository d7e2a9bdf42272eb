"""The LMS's operational database (lms_oltp): numbered SQL migrations and their runner."""

from lms.oltp.migrate import Migration, MigrationStatus, discover, migrate, status

__all__ = ["Migration", "MigrationStatus", "discover", "migrate", "status"]
