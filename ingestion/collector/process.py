"""The collector as its own process (`lms collector run`), started and stopped by its pid.

The demo, the end-to-end tests and the benchmarks all run the collector exactly as an operator
does; ``/ready`` checks Kafka. The process handling itself is `lms.process.ServerProcess`.
"""

from __future__ import annotations

from lms.process import ServerProcess, free_port, wait_ready

__all__ = ["CollectorProcess", "free_port", "wait_ready"]


class CollectorProcess(ServerProcess):
    """``lms collector run`` on its own port (one free port unless given)."""

    name = "collector"
    command = ("collector", "run")
