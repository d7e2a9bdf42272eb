"""Run a suite with an ephemeral Great Expectations context (nothing written to disk) and turn
the validation results into one report a person can act on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lms.errors import LmsError, UsageError
from lms.quality.suites import SUITES, TableCheck
from lms.settings import Settings, get_settings

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5


@dataclass
class Failure:
    table: str
    expectation: str
    column: str
    detail: str

    def line(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"  - {self.expectation} on {where}: {self.detail}"


@dataclass
class SuiteResult:
    name: str
    tables: list[str]
    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures

    def report(self) -> str:
        head = (
            f"suite {self.name}: {self.evaluated - len(self.failures)}/{self.evaluated} "
            f"expectations passed on {', '.join(self.tables)}"
        )
        return "\n".join([head, *(f.line() for f in self.failures)])


class ExpectationsFailed(LmsError):
    """A suite found bad data; the message is the report (which expectation, column, how many
    rows, examples)."""

    def __init__(self, result: SuiteResult) -> None:
        super().__init__(result.report())
        self.result = result


def _schema(check: TableCheck, settings: Settings) -> str:
    if check.layer == "raw":
        return settings.raw_schema
    return f"{settings.dbt_schema_prefix}{check.schema}"


def _column_of(config: dict[str, Any]) -> str:
    kwargs = config.get("kwargs", {})
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"({kwargs['column_A']}, {kwargs['column_B']})"
    if "column_list" in kwargs:
        return "(" + ", ".join(kwargs["column_list"]) + ")"
    return ""


def _detail(result: dict[str, Any]) -> str:
    if result.get("exception_info", {}).get("raised_exception"):
        message = str(result["exception_info"].get("exception_message", "")).splitlines()
        return f"could not be evaluated: {message[0][:200] if message else 'error'}"
    res = result.get("result") or {}
    if "unexpected_count" in res and res.get("element_count") is not None:
        examples = res.get("partial_unexpected_list") or []
        shown = ", ".join(repr(v) for v in examples[:MAX_EXAMPLES])
        pct = res.get("unexpected_percent")
        pct_text = f" ({pct:.2f} %)" if isinstance(pct, int | float) else ""
        text = f"{res['unexpected_count']} of {res['element_count']} rows unexpected{pct_text}"
        return f"{text}; e.g. {shown}" if shown else text
    if "observed_value" in res:
        details = res.get("details") or {}
        mismatched = details.get("mismatched")
        extra = f"; mismatch {mismatched}" if mismatched else ""
        return f"observed {res['observed_value']!r}{extra}"
    return "failed"


def _expectation_name(config: dict[str, Any]) -> str:
    return str(config.get("type") or config.get("expectation_type") or "expectation")


def run_suite(name: str, settings: Settings | None = None) -> SuiteResult:
    """Validate suite `name` (see `SUITES`); raise `ExpectationsFailed` when any expectation fails."""
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    settings = settings or get_settings()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_postgres(
        name="warehouse", connection_string=settings.warehouse_dsn
    )
    checks = SUITES[name]
    result = SuiteResult(name=name, tables=[])
    for check in checks:
        schema = _schema(check, settings)
        qualified = f"{schema}.{check.table}"
        result.tables.append(qualified)
        try:
            asset = source.add_table_asset(
                name=qualified, table_name=check.table, schema_name=schema
            )
        except Exception as exc:  # GE raises its own types for a missing table
            raise LmsError(
                f"suite {name}: cannot read {qualified} ({exc}); build the warehouse first "
                "(lms warehouse build)"
            ) from exc
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        suite = gx.ExpectationSuite(name=f"{name}.{check.table}")
        for expectation in check.expectations():
            suite.add_expectation(expectation)
        validation = batch.validate(suite, result_format={"result_format": "SUMMARY"})
        for item in validation.to_json_dict()["results"]:
            result.evaluated += 1
            if item.get("success"):
                continue
            config = item.get("expectation_config") or {}
            result.failures.append(
                Failure(
                    table=qualified,
                    expectation=_expectation_name(config),
                    column=_column_of(config),
                    detail=_detail(item),
                )
            )
    log.info(result.report())
    if not result.success:
        raise ExpectationsFailed(result)
    return result
