"""Spark jobs that land events and OLTP snapshots in the lake (S3) and the warehouse raw layer."""
