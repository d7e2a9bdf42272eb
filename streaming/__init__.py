"""PyFlink jobs: Kafka (the collector's raw topic) → Elasticsearch live indices.

Runs in its own environment (``streaming/.venv``) and shares nothing with ``lms`` but the event
contract's schema file and ``LMS_*`` environment variables. Entry point: ``python -m
streaming.run`` (what ``lms stream run`` launches).
"""
