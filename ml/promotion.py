"""Registering a trained model and deciding whether it replaces the promoted one.

A candidate is promoted only when it beats its strongest baseline on its test window AND beats
the currently promoted model re-evaluated on that same test window (same rows, same metric). A
promoted model that cannot score the new data at all (the marts lost a feature it needs) is
replaced by a candidate that beats its baseline, and the card says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml import card as cards
from ml.errors import MlError
from ml.metrics import better
from ml.registry import Registry, new_version
from ml.training import TrainingResult


@dataclass
class Outcome:
    model: str
    version: str
    promoted: bool
    reason: str
    current_version: str | None
    comparison: dict[str, Any]
    card_markdown: str

    def as_row(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "promoted": self.promoted,
            "previous": self.current_version or "—",
            "reason": self.reason,
        }


def compare_with_promoted(
    result: TrainingResult, registry: Registry
) -> tuple[bool, str, str | None, dict[str, Any]]:
    metric = result.primary_metric
    value = result.metrics[metric]
    baseline = result.baselines[result.best_baseline][metric]
    if not result.beats_baseline:
        return (
            False,
            f"{metric} {value:.4f} does not beat the baseline {result.best_baseline} ({baseline:.4f})",
            None,
            {},
        )
    current = registry.promoted(result.name)
    if current is None:
        return (
            True,
            f"first model; {metric} {value:.4f} beats the baseline ({baseline:.4f})",
            None,
            {},
        )
    try:
        bundle, _ = registry.load(result.name, current.version)
        current_metrics = result.evaluate(bundle)
    except MlError as exc:
        return (
            True,
            f"the promoted {current.version} cannot score this data ({exc})",
            current.version,
            {},
        )
    comparison = {"version": current.version, "metrics": current_metrics}
    if better(metric, value, current_metrics[metric]):
        reason = f"{metric} {value:.4f} beats the promoted {current.version} ({current_metrics[metric]:.4f}) on the same test window"
        return True, reason, current.version, comparison
    reason = f"{metric} {value:.4f} does not beat the promoted {current.version} ({current_metrics[metric]:.4f}) on the same test window"
    return False, reason, current.version, comparison


def register_and_promote(result: TrainingResult, registry: Registry) -> Outcome:
    """Store the candidate (always: a rejected model's card is evidence too), then promote it if
    it wins."""
    promote, reason, current, comparison = compare_with_promoted(result, registry)
    card = cards.card(result, comparison=comparison | {"decision": reason, "promoted": promote})
    version = new_version()
    md = cards.markdown(result, version, card)
    attachments = {"card.md": md.encode()} | cards.plots(result)
    registry.register(result.bundle, card, attachments, version=version)
    if promote:
        registry.promote(result.name, version, reason)
    return Outcome(result.name, version, promote, reason, current, comparison, md)
