"""The raw layers' event columns, in order (lake Parquet, PostgreSQL ``raw.events``, BigQuery).

Kept apart from the Spark code so that tools without pyspark (benchmarks, loaders) share them.
"""

# The event's own fields, as the collector published them (`client` and `payload` as JSON text).
EVENT_FIELDS = (
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
)

# What landing adds: where the record sat in Kafka, and the lake's partition date.
RAW_COLUMNS = [*EVENT_FIELDS, "kafka_partition", "kafka_offset", "event_date"]
