"""``train``: validate the feature marts → train each model → evaluate against its baselines →
write the model card → register on S3 → promote only if it beats the promoted model.

Metrics tables and model cards are also Prefect artifacts (``ml-metrics``, ``<model>-card``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from flows.retries import transient_only
from lms.settings import Settings, get_settings
from ml.card import metrics_table
from ml.errors import MlError
from ml.models import MODEL_NAMES
from ml.pipeline import TrainingData, train_model
from ml.promotion import Outcome, register_and_promote
from ml.registry import Registry
from ml.training import TrainingResult

FEATURE_SUITES = (
    "features_student_course",
    "features_student_topic",
    "features_chapter_transitions",
    "features_question_difficulty",
)


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only, cache_policy=NONE)
def validate(suites: tuple[str, ...], settings: Settings) -> None:
    """Great Expectations suites on the marts; a failure raises ``ExpectationsFailed`` whose
    message is the readable report, and the flow stops there."""
    try:
        from lms.quality import run_suite
    except ImportError:
        raise MlError(
            "the expectations (lms.quality) are not installed here; run with --no-validate"
        ) from None

    logger = get_run_logger()
    for suite in suites:
        result = run_suite(suite, settings)
        logger.info("expectations %s passed: %s", suite, result)


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only, cache_policy=NONE)
def load(settings: Settings, schema: str | None, truth_dir: str | None) -> TrainingData:
    td = TrainingData.load(
        settings, schema=schema, truth_dir=Path(truth_dir) if truth_dir else None
    )
    get_run_logger().info(
        "loaded %d student-course rows, %d student-topic rows, %d transitions, %d questions, %d answers",
        len(td.student_course),
        len(td.student_topic),
        len(td.transitions),
        len(td.questions),
        len(td.answers),
    )
    return td


@task(cache_policy=NONE, task_run_name="fit-{name}")
def fit(
    name: str, td: TrainingData, mastery: tuple[TrainingResult, str | None] | None = None
) -> TrainingResult:
    result = train_model(name, td, mastery=mastery)
    get_run_logger().info("%s: %s", name, result.summary())
    return result


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
    cache_policy=NONE,
    task_run_name="register-{result.name}",
)
def register(result: TrainingResult, settings: Settings) -> Outcome:
    outcome = register_and_promote(result, Registry(settings))
    create_table_artifact(
        metrics_table(result),
        key=f"{result.name.replace('_', '-')}-metrics",
        description=f"{result.name} {outcome.version}: test-window metrics vs baselines",
    )
    create_markdown_artifact(
        outcome.card_markdown,
        key=f"{result.name.replace('_', '-')}-card",
        description=f"Model card {result.name} {outcome.version}",
    )
    get_run_logger().info(
        "%s %s: %s (%s)",
        result.name,
        outcome.version,
        "PROMOTED" if outcome.promoted else "not promoted",
        outcome.reason,
    )
    return outcome


@flow(name="train", log_prints=True)
def train_flow(
    models: list[str] | None = None,
    features_schema: str | None = None,
    truth_dir: str | None = None,
    validate_marts: bool = True,
) -> list[dict[str, Any]]:
    """Train, evaluate, register and (maybe) promote each model; returns one row per model."""
    settings = get_settings()
    wanted = list(models or MODEL_NAMES)
    if validate_marts:
        validate(FEATURE_SUITES, settings)
    td = load(settings, features_schema, truth_dir)
    outcomes: list[Outcome] = []
    results: list[TrainingResult] = []
    failures: dict[str, str] = {}
    mastery: tuple[TrainingResult, str | None] | None = None
    for name in [m for m in MODEL_NAMES if m in wanted]:
        if name == "quiz_difficulty" and mastery is None:
            mastery = _promoted_mastery(settings, td)
        # One model failing (too little data for it) must not stop the others from training.
        state = fit(name, td, mastery, return_state=True)
        if state.is_failed():
            failures[name] = _message(state)
            continue
        result = state.result()
        outcome = register(result, settings)
        results.append(result)
        outcomes.append(outcome)
        if name == "topic_mastery":
            mastery = (
                result,
                outcome.version if outcome.promoted else _promoted_version(settings, name),
            )
    rows = [o.as_row() | r.summary() for o, r in zip(outcomes, results, strict=True)]
    create_table_artifact(
        [{k: _short(v) for k, v in row.items()} for row in rows],
        key="ml-metrics",
        description="Models trained in this run: primary metric vs the strongest baseline, promotion",
    )
    if failures:
        raise MlError(
            "training failed for "
            + "; ".join(f"{k}: {v}" for k, v in failures.items())
            + (f" (trained: {', '.join(r.name for r in results)})" if results else "")
        )
    return rows


def _message(state: Any) -> str:
    try:
        state.result()
    except Exception as exc:  # the task's own error, reported as one line
        return str(exc)
    return state.message or "failed"


def _short(value: Any) -> Any:
    return f"{value:.4f}" if isinstance(value, float) else value


def _promoted_version(settings: Settings, name: str) -> str | None:
    promotion = Registry(settings).promoted(name)
    return promotion.version if promotion else None


def _promoted_mastery(settings: Settings, td: TrainingData) -> tuple[TrainingResult, str | None]:
    """When only quiz_difficulty is retrained, it still needs a mastery model: train one for the
    evaluation windows (not registered)."""
    return train_model("topic_mastery", td), _promoted_version(settings, "topic_mastery")
