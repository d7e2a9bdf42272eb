"""The raw layers' event columns, in order (lake Parquet, PostgreSQL ``raw.events``, BigQuery).

Kept apart from the Spark code so that tools without pyspark (benchmarks, loaders) share them.
"""

RAW_COLUMNS = [
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "received_at",
    "student_id",
    "course_id",
    "session_id",
    "client",
    "payload",
    "kafka_partition",
    "kafka_offset",
    "event_date",
]
