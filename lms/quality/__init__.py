"""Data quality gates: Great Expectations suites on the raw layer and the ML feature marts.

`run_suite(name)` validates one suite against the warehouse and raises `ExpectationsFailed`
(an `LmsError`, so a flow or the CLI stops with one readable report) when any expectation fails.
"""

from lms.quality.runner import ExpectationsFailed, SuiteResult, run_suite
from lms.quality.suites import SUITES

__all__ = ["SUITES", "ExpectationsFailed", "SuiteResult", "run_suite"]
