"""The demo's closing summary: where each thing is, headline counts, models against their
baselines, and example API calls with their answers. Also written as JSON (``summary.json``)."""

from __future__ import annotations

import json
from typing import Any

from lms.settings import Settings

BODY_CHARS = 600


def _masked(dsn: str, settings: Settings) -> str:
    return dsn.replace(settings.pg_password, "***") if settings.pg_password else dsn


def _model_rows(models: list[dict[str, Any]]) -> list[str]:
    head = f"  {'model':<16} {'metric':<10} {'model':>8} {'baseline':>8}  {'baseline name':<22} promoted"
    lines = [head]
    for m in models:
        lines.append(
            f"  {m['model']:<16} {m['primary_metric']:<10} {m['model_value']:>8.4f} "
            f"{m['baseline_value']:>8.4f}  {m['baseline']:<22} "
            f"{'yes' if m['promoted'] else 'no'} ({m['version']})"
        )
    return lines


def _example_lines(serve: dict[str, Any]) -> list[str]:
    lines = []
    for call in serve["examples"]:
        body = json.dumps(call["body"], default=str)
        if len(body) > BODY_CHARS:
            body = body[:BODY_CHARS] + " …"
        lines += [
            f'  curl -s -H "X-API-Key: $(cat {serve["key_file"]})" {serve["url"]}{call["path"]}',
            f"  → {call['status']} (X-Model-Version: {call['model_version']}) {body}",
            "",
        ]
    return lines


def _cpu_lines(cpu_s: dict[str, dict[str, float]]) -> list[str]:
    """Per step: CPU seconds of the whole machine and of each part that used at least 1 s."""
    if not any(cpu_s.values()):
        return []
    return [
        "CPU seconds per step (all cores: machine, then by part):",
        *(
            f"  {step:<9} " + ", ".join(f"{part} {s:.0f}" for part, s in used.items() if s >= 1)
            for step, used in cpu_s.items()
            if used
        ),
    ]


def _lag_lines(stream: dict[str, Any]) -> list[str]:
    lag = stream.get("lag")
    if lag is None:
        return []
    if lag == 0:
        return ["  the jobs have processed every event on the raw topic"]
    nice = f" at nice {stream['nice']}" if stream.get("nice") else ""
    return [
        f"  {lag:,} events still to process: the jobs{nice} catch up in the background "
        "(the counts below grow until then)"
    ]


def _prefect_lines(prefect: dict[str, Any] | None) -> list[str]:
    if not prefect:
        return []
    if prefect.get("ui"):
        return [f"  flow runs: Prefect UI {prefect['ui']} (API {prefect['api']})"]
    return [f"  flow runs: Prefect API {prefect['api']}"]


def render(settings: Settings, summary: dict[str, Any]) -> str:
    sim, collector, landing = summary["simulation"], summary["collector"], summary["landing"]
    stream, wh, serve = summary["stream"], summary["warehouse"], summary["serve"]
    prefix = settings.dbt_schema_prefix
    lines = [
        "",
        "LMS platform demo: what is where",
        "",
        "Services (lms services status):",
        *(f"  {name:<14} {address}" for name, address in summary["services"].items()),
        "",
        f"Simulated school: {sim['directory']}",
        f"  {sim['events']:,} event lines ({sim['valid_events']:,} contract-valid); "
        f"OLTP {_masked(settings.oltp_dsn, settings)} schema lms: "
        + ", ".join(f"{t} {n:,}" for t, n in sim["oltp_rows"].items()),
        f"  planted truth (never used as features): {sim['directory']}/truth",
        "",
        f"Collector {collector['url']}/v1/events (OpenAPI {collector['url']}/docs):",
        f"  accepted {collector['accepted']:,}, duplicate {collector['duplicate']:,}, "
        f"rejected and dead-lettered {collector['rejected']:,} {collector['reasons']}",
        f"  Kafka {settings.kafka_bootstrap_servers}: topics {', '.join(collector['topics'])}",
        "",
        f"Lake (S3 {settings.s3_endpoint_url}): {landing['lake']}event_date=…/event_type=…/; "
        f"OLTP snapshots under {settings.lake_root}/oltp/ (personal data removed)",
        f"Warehouse raw layer ({_masked(settings.warehouse_dsn, settings)}):",
        *(
            f"  {settings.raw_schema}.{table:<24} {rows:,} rows"
            for table, rows in landing["raw_counts"].items()
        ),
        "",
        f"Warehouse marts (dbt; schemas {prefix}staging, {prefix}intermediate, {prefix}marts, "
        f"{prefix}features, {prefix}snapshots):",
        *(f"  {t:<34} {n:,} rows" for t, n in wh["rows"].items()),
        f"  at-risk list by band: {wh['at_risk_bands']}",
        f"  report: {wh['report']}   dbt docs: lms warehouse docs ({wh['dbt_docs']})",
        "  Power BI / Tableau: bi/ (connection files), docs/bi.md",
        "",
        f"Models (registry s3://{settings.model_bucket or settings.lake_bucket}/"
        f"{settings.model_prefix}/; held-out window, strongest baseline):",
        *_model_rows(summary["models"]),
        f"  batch scores: {summary['scored'].get('rows', {})} in schema {settings.ml_schema}",
        *_prefect_lines(summary.get("prefect")),
        "",
        f"Live indices (Elasticsearch {stream['es']}, jobs pid {stream['pid']}, log "
        f"{stream['log']}):",
        *_lag_lines(stream),
        *(f"  {index:<40} {n:,} docs" for index, n in sorted(summary["live"].items())),
        "",
        f"Prediction service {serve['url']} (OpenAPI {serve['url']}/docs, metrics "
        f"{serve['url']}/metrics); key with {serve['scopes']} in {serve['key_file']}",
        "",
        "Three calls an LMS makes:",
        *_example_lines(serve),
        "Step times: " + ", ".join(f"{k} {v:.0f} s" for k, v in summary["timings"].items()),
        *_cpu_lines(summary.get("cpu_s", {})),
        f"Summary as JSON: {summary['summary_file']}. Stop everything: make demo-down.",
    ]
    return "\n".join(lines) + "\n"
