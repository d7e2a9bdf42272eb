"""Waiting for a server's readiness: a server that answers is ready, one that has died is
reported at once with its log, not after the whole timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lms.errors import LmsError
from lms.process import free_port, wait_ready


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ready_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_server_that_answers_is_ready(ready_server: str) -> None:
    wait_ready(ready_server, name="probe", timeout_s=10, alive=lambda: True)


def test_a_dead_server_fails_at_once_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("starting\nboom: address already in use\n")
    started = time.monotonic()
    with pytest.raises(LmsError, match="no longer running") as raised:
        wait_ready(
            _closed_port_url(), name="probe", timeout_s=60, log_path=log, alive=lambda: False
        )
    assert "address already in use" in str(raised.value)
    assert time.monotonic() - started < 10


def test_without_a_liveness_check_the_deadline_is_the_limit() -> None:
    with pytest.raises(LmsError, match="not ready after"):
        wait_ready(_closed_port_url(), name="probe", timeout_s=0.5)
