"""Throughput of the event-contract validator on one core (informational, no target)."""

from __future__ import annotations

from lms.contract.bench import bench_validate


def run() -> dict[str, float]:
    return {
        "contract_validate_events_per_s": round(bench_validate(50_000), 1),
        "contract_validate_json_events_per_s": round(bench_validate(50_000, from_json=True), 1),
    }


if __name__ == "__main__":
    print(run())
