"""`lms flow NAME`: run the ML flows (train, score, pipeline) on the local ephemeral Prefect API,
or on a Prefect server when PREFECT_API_URL is set; `lms flow models` lists the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lms.errors import UsageError

app = typer.Typer(no_args_is_help=True, help="ML flows (Prefect): train, score, pipeline.")

MODELS_HELP = "Comma-separated models (default all): dropout, final_score, topic_mastery, next_chapter, quiz_difficulty."
TRUTH_HELP = (
    "A simulation's truth/ folder: adds checks against the planted truth to the model cards."
)


def _models(value: str | None) -> list[str] | None:
    if not value:
        return None
    from ml.models import MODEL_NAMES

    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown:
        raise UsageError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}"
        )
    return names


def _truth(path: Path | None) -> str | None:
    if path is None:
        return None
    if not (path / "students.parquet").exists():
        raise UsageError(
            f"--truth {path} has no students.parquet; pass a simulation's truth/ folder"
        )
    return str(path)


def _echo(result: object) -> None:
    typer.echo(json.dumps(result, indent=2, default=str))


@app.command("train")
def train(
    models: Annotated[str | None, typer.Option(help=MODELS_HELP)] = None,
    schema: Annotated[
        str | None, typer.Option(help="Feature marts' schema (default LMS_FEATURES_SCHEMA).")
    ] = None,
    truth: Annotated[Path | None, typer.Option(help=TRUTH_HELP)] = None,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Run the marts' expectations first.")
    ] = True,
) -> None:
    """Validate the marts, train, evaluate, register; promote models that beat the promoted ones."""
    names, truth_dir = _models(models), _truth(truth)  # operator mistakes fail before Prefect loads
    from flows.train import train_flow

    _echo(
        train_flow(
            models=names,
            features_schema=schema,
            truth_dir=truth_dir,
            validate_marts=validate,
        )
    )


@app.command("score")
def score(
    schema: Annotated[
        str | None, typer.Option(help="Feature marts' schema (default LMS_FEATURES_SCHEMA).")
    ] = None,
    history: Annotated[
        bool, typer.Option(help="Score every as-of date, not only the latest.")
    ] = False,
) -> None:
    """Batch predictions with the promoted models into the warehouse's ml schema."""
    from flows.score import score_flow

    _echo(score_flow(features_schema=schema, history=history))


@app.command("pipeline")
def pipeline(
    land: Annotated[
        bool, typer.Option("--land/--no-land", help="Land Kafka events and OLTP snapshots first.")
    ] = True,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate", help="Run the expectations on raw data and marts."
        ),
    ] = True,
    models: Annotated[str | None, typer.Option(help=MODELS_HELP)] = None,
    truth: Annotated[Path | None, typer.Option(help=TRUTH_HELP)] = None,
) -> None:
    """Land → dbt build → expectations → train → score → refresh the at-risk mart."""
    names, truth_dir = _models(models), _truth(truth)  # operator mistakes fail before Prefect loads
    from flows.pipeline import pipeline_flow

    _echo(
        pipeline_flow(
            land_events=land,
            validate_data=validate,
            truth_dir=truth_dir,
            models=names,
        )
    )


@app.command("models")
def models_(
    name: Annotated[str | None, typer.Argument(help="One model: list its versions.")] = None,
) -> None:
    """The model registry: promoted version per model, or one model's versions."""
    from lms.settings import get_settings
    from ml.registry import Registry

    registry = Registry(get_settings())
    if name is None:
        rows = []
        for model in registry.models():
            promoted = registry.promoted(model)
            rows.append(
                {
                    "model": model,
                    "versions": len(registry.versions(model)),
                    "promoted": promoted.version if promoted else None,
                    "reason": promoted.reason if promoted else None,
                }
            )
        _echo(rows)
        return
    promoted = registry.promoted(name)
    out = []
    for version in registry.versions(name):
        card = registry.card(name, version)
        out.append(
            {
                "version": version,
                "promoted": promoted is not None and promoted.version == version,
                "primary_metric": card.get("primary_metric"),
                "value": (card.get("metrics") or {}).get(card.get("primary_metric")),
                "beats_baseline": card.get("beats_baseline"),
                "decision": (card.get("comparison_with_promoted") or {}).get("decision"),
            }
        )
    if not out:
        raise UsageError(f"model {name!r} has no versions in the registry")
    _echo(out)


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="The model, e.g. dropout.")],
    version: Annotated[str, typer.Argument(help="A version from `lms flow models NAME`.")],
    reason: Annotated[
        str, typer.Option(help="Why, kept in the promotion history.")
    ] = "promoted by hand",
) -> None:
    """Point a model at one of its versions (rollback included); running prediction services
    pick it up at their next registry poll, and `lms flow score` uses it from then on."""
    from lms.settings import get_settings
    from ml.errors import RegistryError
    from ml.registry import Registry

    _models(name)  # an unknown model name is one clear line
    registry = Registry(get_settings())
    previous = registry.promoted(name)
    try:
        promotion = registry.promote(name, version, reason)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    _echo(
        {
            "model": name,
            "promoted": promotion.version,
            "previous": previous.version if previous else None,
            "reason": promotion.reason,
        }
    )
