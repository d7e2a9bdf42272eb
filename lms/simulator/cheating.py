"""Planted cheating: which behaviours a cheater shows.

The behaviours themselves live where they happen (``behaviour.ShardBehaviour.take_quiz`` and
``concurrent_session``); this module names them and decides them per student, so the truth files
and the event generator agree on one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lms.simulator.population import CHEAT_BEHAVIOURS


@dataclass(frozen=True)
class CheatProfile:
    # Answers far faster than the question's reading_time_s, with near-perfect accuracy.
    fast_answers: bool = False
    # Leaves the quiz tab (tab_hidden/tab_visible) to look answers up.
    tab_switching: bool = False
    # A second session from another network_id open while the quiz runs (someone helping).
    concurrent_sessions: bool = False

    @property
    def any(self) -> bool:
        return self.fast_answers or self.tab_switching or self.concurrent_sessions

    @classmethod
    def from_flags(cls, flags: np.ndarray) -> CheatProfile:
        values = [bool(x) for x in flags.tolist()]
        return cls(**dict(zip(CHEAT_BEHAVIOURS, values, strict=True)))

    def names(self) -> list[str]:
        return [n for n in CHEAT_BEHAVIOURS if getattr(self, n)]


HONEST = CheatProfile()
