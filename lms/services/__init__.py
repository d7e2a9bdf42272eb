"""Local services of the platform: PostgreSQL, Kafka, S3 (s3proxy), Elasticsearch, BigQuery.

`lms services up|down|status|logs` drives :class:`lms.services.manager.ServiceManager`; see
docs/services.md for ports, env vars, the state layout and troubleshooting.
"""

from __future__ import annotations

from lms.services.base import ServiceStatus

__all__ = ["ServiceStatus"]
