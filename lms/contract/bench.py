"""Validator throughput, for `bench/contract_bench.py` (informational, no target)."""

from __future__ import annotations

import time

import orjson

from lms.contract.examples import load_examples
from lms.contract.validate import validate_event, validate_event_json


def bench_validate(n: int = 50_000, *, from_json: bool = False) -> float:
    """Events per second through the collector's validator on a mix of every event type."""
    examples = list(load_examples().values())
    if from_json:
        raws = [orjson.dumps(example) for example in examples]
        validate = validate_event_json
        inputs: list[object] = list(raws)
    else:
        validate = validate_event  # type: ignore[assignment]
        inputs = list(examples)
    k = len(inputs)
    for item in inputs:  # warm-up: first calls pay for lazy imports and caches
        validate(item)  # type: ignore[arg-type]
    start = time.perf_counter()
    for i in range(n):
        validate(inputs[i % k])  # type: ignore[arg-type]
    return n / (time.perf_counter() - start)
