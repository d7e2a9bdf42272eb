"""What a simulation run is asked for: one frozen value passed to every stage and worker."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from lms.errors import UsageError

# A fixed default start keeps output independent of the day the command runs, and in the past so a
# collector that refuses future timestamps accepts a default simulation.
DEFAULT_START = date(2026, 1, 5)

# Students per shard: a shard is the unit of randomness (its own seed) and of parallel work, so the
# output does not depend on how many workers ran.
SHARD_STUDENTS = 250


@dataclass(frozen=True)
class SimulationConfig:
    students: int = 2000
    courses: int = 8
    days: int = 120
    seed: int = 7
    start: date = DEFAULT_START
    cheater_share: float = 0.01
    late_rate: float = 0.02
    duplicate_rate: float = 0.005
    invalid_rate: float = 0.001
    shard_students: int = SHARD_STUDENTS

    def __post_init__(self) -> None:
        if self.students < 1:
            raise UsageError(f"--students must be at least 1 (got {self.students})")
        if self.courses < 1:
            raise UsageError(f"--courses must be at least 1 (got {self.courses})")
        if self.days < 1:
            raise UsageError(f"--days must be at least 1 (got {self.days})")
        if self.seed < 0:
            raise UsageError(f"--seed must be zero or positive (got {self.seed})")
        for name in ("cheater_share", "late_rate", "duplicate_rate", "invalid_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 0.5:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} must be between 0 and 0.5 (got {value})")
        if self.shard_students < 1:
            raise UsageError("shard size must be at least 1 student")

    @property
    def n_shards(self) -> int:
        return -(-self.students // self.shard_students)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = self.start.isoformat()
        return out
