"""A deterministic simulated school: OLTP rows, the event stream a collector would receive, and
the hidden truth behind both, so that every later layer can be tested against known answers.

Entry points: :func:`lms.simulator.school.simulate_school` (batch) and
:func:`lms.simulator.live.run_live` (events stamped now, at a steady rate).
"""

from lms.simulator.config import SimulationConfig

__all__ = ["SimulationConfig"]
