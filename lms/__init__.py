"""LMS data and ML platform: shared contract, settings, services, simulator and the `lms` CLI."""

__version__ = "0.1.0"
