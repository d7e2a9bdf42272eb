"""The platform's HTTP servers as their own processes (`lms collector run`, `lms serve`, and
the demo's Prefect server).

The demo, the end-to-end tests and the benchmarks run them exactly as an operator does; this is
the one place that knows how to start one on its own port, wait until its readiness endpoint
answers, and stop it by its process group without touching any other process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from lms.errors import LmsError

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log_path: Path, limit: int = 2000) -> str:
    try:
        return log_path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def wait_ready(
    url: str,
    *,
    name: str = "server",
    ready_path: str = "/ready",
    timeout_s: float = 90,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Return once ``url + ready_path`` answers 200; raise with the log's tail if the process
    exits or the deadline passes. ``alive`` watches a process started by someone else (no
    ``proc`` here, only its pid file): one that has died fails at once, not at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            gone = f"exited with {proc.returncode} before it was ready"
        elif alive is not None and not alive():
            gone = "is no longer running; it never became ready"
        else:
            gone = ""
        if gone:
            tail = log_tail(log_path) if log_path else ""
            raise LmsError(f"{name} {gone}\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{ready_path}", timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    where = f" (log: {log_path})" if log_path else ""
    raise LmsError(f"{name} at {url} not ready after {timeout_s:.0f} s{where}")


class ServerProcess:
    """``lms <command...> --workers N --port P`` in its own session, logging to ``log_path``.

    Subclasses name the command. ``env`` replaces the child's environment (pass ``os.environ``
    plus overrides such as ``LMS_KAFKA_TOPIC_RAW``); the process outlives this object unless
    ``stop()`` is called, which is what the demo relies on (it records the pid and stops it
    later).
    """

    name = "server"
    command: tuple[str, ...] = ()
    ready_path = "/ready"

    def __init__(
        self,
        *,
        log_path: Path,
        port: int | None = None,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "lms.cli.main",
            *self.command,
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
        ]

    def start(self, timeout_s: float = 90) -> Self:
        self.launch()
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> Self:
        """Start the process and return at once; `wait_ready` later (the demo overlaps a slow
        start-up with other work)."""
        argv = self.argv()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: uvicorn's workers are its children and stop with its group.
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float, alive: Callable[[], bool] | None = None) -> None:
        """Until the server on this port answers its ready path; it may have been started by an
        earlier process (then there is no ``proc`` to watch, and ``alive`` says whether that
        process still runs)."""
        wait_ready(
            self.url,
            name=self.name,
            ready_path=self.ready_path,
            timeout_s=timeout_s,
            proc=self.proc,
            log_path=self.log_path,
            alive=alive,
        )

    def stop(self, timeout_s: float = 30) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PredictionServiceProcess(ServerProcess):
    """``lms serve``: ready once the promoted models are loaded and the database answers."""

    name = "prediction service"
    command = ("serve",)
    ready_path = "/ready/predictions"


class PrefectServerProcess(ServerProcess):
    """``prefect server start`` (API and UI) on 127.0.0.1: the demo's orchestration server, so
    flow runs stay visible after the run and no flow pays for an ephemeral API's start-up.
    Its database is under ``PREFECT_HOME`` from ``env``."""

    name = "Prefect server"
    ready_path = "/api/health"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-scheduler",
            "--analytics-off",
        ]

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"
