"""The promoted models, loaded from the registry at start and hot-swapped when a new version is
promoted, without dropping a request.

The loaded set is an immutable snapshot (``Snapshot``); a request takes the current snapshot once
and uses it to the end, so every prediction in one response comes from the versions its
``X-Model-Version`` header names. A background thread polls ``promoted.json`` (one small object
per model) and, when a version changed, loads the new bundle *beside* the old one and then
replaces the snapshot reference in one assignment: requests in flight finish on the old models,
new requests get the new ones, and nothing waits on the download.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ml.bundle import ModelBundle
from ml.registry import Registry
from serving.prepared import Ranker, Tabular, prepare

# A model that never beat its baseline has nothing to serve: its endpoints answer 503, and the
# service is still ready for the others (a failure to load a promoted version is not).
NOT_PROMOTED = "no promoted version in the registry"
log = logging.getLogger("serving.models")

MODELS = ("dropout", "final_score", "topic_mastery", "next_chapter", "quiz_difficulty")


@dataclass(frozen=True)
class Loaded:
    name: str
    version: str
    bundle: ModelBundle
    promoted_at: str
    loaded_at: datetime
    # The one-row serving path built at load (serving.prepared); None: use the library's path.
    prepared: Tabular | Ranker | None = None


@dataclass(frozen=True)
class Snapshot:
    models: MappingProxyType[str, Loaded] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, name: str) -> Loaded | None:
        return self.models.get(name)

    def versions(self) -> dict[str, str]:
        return {name: m.version for name, m in self.models.items()}


class ModelStore:
    def __init__(
        self,
        registry: Registry,
        *,
        names: tuple[str, ...] = MODELS,
        on_swap: Callable[[Loaded, str | None], None] | None = None,
    ) -> None:
        self.registry = registry
        self.names = names
        self.on_swap = on_swap
        self.snapshot = Snapshot()
        self.errors: dict[str, str] = {}
        self.last_poll: datetime | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> Snapshot:
        return self.snapshot

    def refresh(self) -> dict[str, str]:
        """Load every model whose promoted version differs from the loaded one; returns the
        swaps made (name -> new version). A model that fails to load keeps its old version."""
        swapped: dict[str, str] = {}
        with self._refresh_lock:
            models = dict(self.snapshot.models)
            for name in self.names:
                try:
                    promotion = self.registry.promoted(name)
                    if promotion is None:
                        self.errors[name] = NOT_PROMOTED
                        continue
                    old = models.get(name)
                    if old is not None and old.version == promotion.version:
                        self.errors.pop(name, None)
                        continue
                    bundle, version = self.registry.load(name, promotion.version)
                    if bundle.booster is not None:
                        # One row per request: OpenMP threads only add synchronisation (10x
                        # slower on a busy machine); concurrency comes from requests/workers.
                        bundle.booster.set_param({"nthread": 1})
                except Exception as exc:  # S3 down, corrupt files: keep serving what we have
                    self.errors[name] = f"{type(exc).__name__}: {exc}"
                    log.warning("model %s not (re)loaded: %s", name, exc)
                    continue
                models[name] = Loaded(
                    name, version, bundle, promotion.promoted_at, datetime.now(UTC), prepare(bundle)
                )
                self.errors.pop(name, None)
                swapped[name] = version
                if self.on_swap is not None:
                    self.on_swap(models[name], old.version if old else None)
                log.info(
                    "model loaded",
                    extra={"model": name, "version": version, "previous": old and old.version},
                )
            if swapped:
                self.snapshot = Snapshot(MappingProxyType(models))  # the atomic swap
            self.last_poll = datetime.now(UTC)
        return swapped

    def start(self, interval_s: float) -> None:
        """Poll the registry every ``interval_s`` seconds in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="model-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def status(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            name: (
                {"version": m.version, "promoted_at": m.promoted_at, "loaded": True}
                if (m := snap.get(name))
                else {"loaded": False, "error": self.errors.get(name, "not loaded yet")}
            )
            for name in self.names
        }
