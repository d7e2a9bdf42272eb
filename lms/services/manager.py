"""The local services manager: install, start, check, stop the platform's services.

    from lms.services.manager import ServiceManager
    from lms.settings import get_settings

    manager = ServiceManager(get_settings())
    manager.up()                 # all five; idempotent and cheap when they are healthy
    manager.status(["kafka"])    # list[ServiceStatus]
    manager.down(["kafka"])      # stops only processes this project started; data kept

``up`` runs the services in parallel (Elasticsearch is slow to start), reports each step through
``report`` (one line each, prefixed with the service name), and raises :class:`LmsError` with one
line per failed service. After a successful ``up`` the hooks in :mod:`lms.services.hooks` run
(the place for OLTP migrations).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lms.errors import LmsError, UsageError
from lms.services.base import (
    Reporter,
    Service,
    ServiceStatus,
    StatePaths,
    display_path,
    file_lock,
    last_log_line,
    preflight_ports,
    spawn,
    write_pid_file,
)
from lms.services.bigquery import BigQuery
from lms.services.elasticsearch import Elasticsearch
from lms.services.kafka import Kafka
from lms.services.postgres import Postgres
from lms.services.s3 import S3
from lms.settings import Settings

#: Start order (and the order of every listing).
SERVICE_CLASSES: tuple[type[Service], ...] = (Postgres, Kafka, S3, Elasticsearch, BigQuery)
SERVICE_NAMES: tuple[str, ...] = tuple(cls.name for cls in SERVICE_CLASSES)
ALIASES: dict[str, str] = {
    "pg": "postgres",
    "postgresql": "postgres",
    "es": "elasticsearch",
    "bq": "bigquery",
    "minio": "s3",
    "s3proxy": "s3",
}

StatusCallback = Callable[[ServiceStatus], None]


def resolve_names(names: Iterable[str] | None) -> list[str]:
    """Canonical service names in start order; UsageError for an unknown name."""
    requested = [n.strip().lower() for n in (names or []) if n.strip()]
    if not requested:
        return list(SERVICE_NAMES)
    chosen: set[str] = set()
    for raw in requested:
        name = ALIASES.get(raw, raw)
        if name not in SERVICE_NAMES:
            raise UsageError(
                f"unknown service {raw!r}: choose from {', '.join(SERVICE_NAMES)} "
                f"(aliases: {', '.join(sorted(ALIASES))})"
            )
        chosen.add(name)
    return [n for n in SERVICE_NAMES if n in chosen]


def _print(line: str) -> None:
    print(line, flush=True)


class ServiceManager:
    def __init__(
        self,
        settings: Settings,
        report: Reporter | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.paths = StatePaths(Path(state_dir or settings.state_dir).absolute())
        self._report_fn: Reporter = report or (lambda _line: None)
        self._lock = threading.Lock()
        self.services: dict[str, Service] = {
            cls.name: cls(settings, self.paths) for cls in SERVICE_CLASSES
        }

    # ---- reporting ------------------------------------------------------------------------
    def _report(self, line: str) -> None:
        with self._lock:
            self._report_fn(line)

    def _reporter(self, name: str) -> Reporter:
        return lambda msg: self._report(f"{name:<13} {msg}")

    def service(self, name: str) -> Service:
        return self.services[resolve_names([name])[0]]

    # ---- status ---------------------------------------------------------------------------
    def status(self, names: Sequence[str] | None = None) -> list[ServiceStatus]:
        chosen = resolve_names(names)
        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            return list(pool.map(lambda n: self.services[n].status(), chosen))

    # ---- up -------------------------------------------------------------------------------
    def up(
        self,
        names: Sequence[str] | None = None,
        *,
        timeout: float | None = None,
        run_hooks: bool = True,
        on_status: StatusCallback | None = None,
    ) -> list[ServiceStatus]:
        """Install what is missing, start what is stopped, wait until all are healthy.

        Returns one status per service (``action`` is "started" or "already running"). Raises
        LmsError naming every service that failed, with its log file.
        """
        chosen = resolve_names(names)
        self.paths.ensure()
        results: dict[str, ServiceStatus] = {}
        errors: dict[str, str] = {}

        def run(name: str) -> None:
            try:
                status = self._up_one(self.services[name], timeout)
            except LmsError as exc:
                errors[name] = str(exc)
                self._reporter(name)(f"FAILED: {exc}")
                return
            except Exception as exc:  # a bug or an unexpected library error: still one line
                log = display_path(self.services[name].log_path)
                errors[name] = f"{name}: {type(exc).__name__}: {exc} (log: {log})"
                self._reporter(name)(f"FAILED: {type(exc).__name__}: {exc}")
                return
            results[name] = status
            if on_status is not None:
                with self._lock:
                    on_status(status)

        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            list(pool.map(run, chosen))
        if errors:
            raise LmsError(" | ".join(errors[n] for n in chosen if n in errors))
        statuses = [results[n] for n in chosen]
        if run_hooks:
            from lms.services import hooks

            hooks.after_up(self.settings, statuses, self._report)
        return statuses

    def _up_one(self, svc: Service, timeout: float | None) -> ServiceStatus:
        report = self._reporter(svc.name)
        with file_lock(self.paths.lock(svc.name)):
            pid = svc.running_pid()
            if pid is not None:
                ok, _ = svc.probe()
                if not ok:
                    report(f"running (pid {pid}) but not healthy yet: waiting")
                    self._wait_healthy(svc, None, pid, 0, timeout)
                svc.ensure(report)
                return self._final(svc, "already running")
            svc.pid_path.unlink(missing_ok=True)
            preflight_ports(svc.name, svc.ports(), svc.log_path)
            svc.install(report)
            run_as = svc.run_as(report)
            data = svc.setup_data_dir(run_as, report)
            svc.prepare(data, run_as, report)
            # Installs can take minutes: check the ports again right before binding them.
            preflight_ports(svc.name, svc.ports(), svc.log_path)
            argv, env, cwd = svc.command(data, run_as)
            proc, offset = spawn(
                argv, log_path=svc.log_path, cwd=cwd, env=env, run_as=run_as, label=svc.name
            )
            write_pid_file(svc.pid_path, proc.pid)
            report(f"starting (pid {proc.pid}, log {display_path(svc.log_path)})")
            started = time.monotonic()
            self._wait_healthy(svc, proc, proc.pid, offset, timeout)
            svc.ensure(report)
            report(f"healthy after {time.monotonic() - started:.0f}s")
            return self._final(svc, "started")

    def _final(self, svc: Service, action: str) -> ServiceStatus:
        st = svc.status()
        return ServiceStatus(**{**st.to_dict(), "action": action})

    def _wait_healthy(
        self,
        svc: Service,
        proc: object | None,
        pid: int,
        log_offset: int,
        timeout: float | None,
    ) -> None:
        import subprocess

        limit = timeout if timeout is not None else svc.start_timeout
        deadline = time.monotonic() + limit
        detail = ""
        log = display_path(svc.log_path)
        while time.monotonic() < deadline:
            exited: int | None = None
            if isinstance(proc, subprocess.Popen):
                exited = proc.poll()
            elif svc.running_pid() != pid:
                exited = -1
            if exited is not None:
                svc.pid_path.unlink(missing_ok=True)
                last = last_log_line(svc.log_path, log_offset)
                code = f" with code {exited}" if exited >= 0 else ""
                hint = f"; last log line: {last}" if last else ""
                raise LmsError(f"{svc.name} exited during start-up{code} (log: {log}){hint}")
            ok, detail = svc.probe()
            if ok:
                return
            time.sleep(0.5)
        last = last_log_line(svc.log_path, log_offset)
        hint = f"; last log line: {last}" if last else ""
        raise LmsError(
            f"{svc.name} did not become healthy within {limit:.0f}s ({detail}); it is still "
            f"running as pid {pid}, stop it with `lms services down {svc.name}` (log: {log}){hint}"
        )

    # ---- down -----------------------------------------------------------------------------
    def down(
        self, names: Sequence[str] | None = None, *, purge: bool = False
    ) -> list[ServiceStatus]:
        """Stop the services this project started (by pid file, ownership checked).

        Data is kept unless ``purge``. Stops in reverse start order, in parallel.
        """
        chosen = resolve_names(names)
        results: dict[str, ServiceStatus] = {}
        errors: dict[str, str] = {}

        def run(name: str) -> None:
            svc = self.services[name]
            report = self._reporter(name)
            try:
                with file_lock(self.paths.lock(name)):
                    pid = svc.running_pid()
                    if pid is None:
                        svc.pid_path.unlink(missing_ok=True)
                        action = "not running"
                    else:
                        report(f"stopping pid {pid}")
                        killed = svc.stop(pid)
                        svc.pid_path.unlink(missing_ok=True)
                        report("killed (did not stop in time)" if killed else "stopped")
                        action = "stopped"
                    if purge:
                        svc.purge()
                        report("data deleted")
                    results[name] = ServiceStatus(**{**svc.status().to_dict(), "action": action})
            except LmsError as exc:
                errors[name] = str(exc)

        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            list(pool.map(run, list(reversed(chosen))))
        if errors:
            raise LmsError(" | ".join(errors[n] for n in chosen if n in errors))
        return [results[n] for n in chosen]

    # ---- logs -----------------------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.service(name).log_path


def default_reporter() -> Reporter:
    return _print
