"""Model cards: what a model predicts, from which data and window, how it compares with its
baselines, and plots (ROC, calibration, feature importance) — stored beside the model."""

from __future__ import annotations

import io
import math
import subprocess
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lms.settings import REPO_ROOT
from ml.training import TrainingResult, importance

DESCRIPTIONS = {
    "dropout": "Probability that the student withdraws or stops all activity before the course ends.",
    "final_score": "The enrollment's final score (0-100), with an 80% conformal prediction interval.",
    "topic_mastery": "Probability of answering the topic's next questions correctly (weak topics).",
    "next_chapter": "Ranked next chapters, learned from successful students' moves, order respected.",
    "quiz_difficulty": "Question difficulty band keeping expected success near the target.",
}


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def code_version() -> str:
    """The git commit the code ran from (``+dirty`` when the tree had local changes)."""
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def card(result: TrainingResult, *, comparison: dict[str, Any] | None = None) -> dict[str, Any]:
    return _clean(
        {
            "model": result.name,
            "description": DESCRIPTIONS.get(result.name, ""),
            "kind": result.bundle.kind,
            "trained_at": datetime.now(UTC).isoformat(),
            "code_version": code_version(),
            "split": result.split.window(),
            "data": result.data,
            "primary_metric": result.primary_metric,
            "metrics": result.metrics,
            "baselines": result.baselines,
            "best_baseline": result.best_baseline,
            "beats_baseline": result.beats_baseline,
            "truth": result.truth,
            "feature_importance": importance(result.bundle),
            "params": {k: v for k, v in result.bundle.params.items() if k not in ("calibrator",)},
            "comparison_with_promoted": comparison or {},
        }
    )


def metrics_table(result: TrainingResult) -> list[dict[str, Any]]:
    """Rows of model and baselines by metrics: the Prefect artifact and the card's table."""
    rows = [{"model": f"{result.name} (candidate)", **result.metrics}]
    rows += [{"model": f"baseline: {k}", **v} for k, v in result.baselines.items()]
    keys = [k for k in rows[0] if k != "model"]
    return [{"model": r["model"], **{k: _fmt(r.get(k)) for k in keys}} for r in rows]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(result: TrainingResult, version: str, data: dict[str, Any]) -> str:
    table = metrics_table(result)
    header = "| " + " | ".join(table[0]) + " |\n|" + "---|" * len(table[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in table)
    imp = "".join(f"| `{f}` | {g:.3f} |\n" for f, g in data.get("feature_importance", [])[:15])
    truth = "".join(f"- {k}: {_fmt(v)}\n" for k, v in (result.truth or {}).items())
    comparison = data.get("comparison_with_promoted") or {}
    lines = [
        f"# Model card: {result.name} {version}\n",
        f"{DESCRIPTIONS.get(result.name, '')}\n",
        f"- Trained: {data['trained_at']} from code `{data['code_version']}`",
        f"- Windows (by as-of date): train {result.split.train_start} → {result.split.train_end}, "
        f"validation {result.split.valid_start} → {result.split.valid_end}, "
        f"test {result.split.test_start} → {result.split.test_end}"
        f" (labels purged at the validation start: {result.split.purged})",
        f"- Rows: {data['data'].get('rows')}",
        f"- Primary metric: `{result.primary_metric}`; strongest baseline `{result.best_baseline}`; "
        f"beats it: **{result.beats_baseline}**\n",
        "## Metrics on the test window\n",
        header + body,
    ]
    if comparison:
        lines.append(f"## Against the promoted model\n\n{comparison}\n")
    if truth:
        lines.append("## Against the simulator's planted truth (evaluation only)\n\n" + truth)
    if imp:
        lines.append(
            "## Feature importance (share of total gain)\n\n| feature | gain |\n|---|---|\n" + imp
        )
    lines.append("\nFeatures: " + ", ".join(f"`{f}`" for f in result.bundle.features) + "\n")
    return "\n".join(lines)


def plots(result: TrainingResult) -> dict[str, bytes]:
    """PNG plots for the card: ROC and calibration (classifiers), predicted vs actual
    (regressors), feature importance (tree models)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    from ml.metrics import calibration_curve

    out: dict[str, bytes] = {}
    data = result.plots

    def save(fig: Any, name: str) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        out[name] = buf.getvalue()

    if "p" in data and len(np.unique(data["y"])) == 2:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for label, p in (
            ("model", data["p"]),
            (f"baseline ({data.get('baseline')})", data["baseline_p"]),
        ):
            fpr, tpr, _ = roc_curve(data["y"], p)
            ax.plot(fpr, tpr, label=label)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(
            xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {result.name}"
        )
        ax.legend(loc="lower right", fontsize=8)
        save(fig, "roc.png")
        fig, ax = plt.subplots(figsize=(4.5, 4))
        pred, obs, _ = calibration_curve(data["y"], data["p"])
        ax.plot(pred, obs, "o-", label="model")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration")
        ax.legend(fontsize=8)
        save(fig, "calibration.png")
    if "pred" in data:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.scatter(data["y"], data["pred"], s=4, alpha=0.4)
        lo, hi = float(np.min(data["y"])), float(np.max(data["y"]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xlabel="actual", ylabel="predicted", title=f"{result.name}: test window")
        save(fig, "predicted_vs_actual.png")
    ranked = importance(result.bundle, top=15)
    if ranked:
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(ranked) + 1))
        names = [n for n, _ in ranked][::-1]
        ax.barh(names, [g for _, g in ranked][::-1])
        ax.set(xlabel="share of total gain", title="Feature importance")
        save(fig, "feature_importance.png")
    return out
