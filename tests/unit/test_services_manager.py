"""Local services manager without any service running: ports, pid ownership, config, CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lms.cli.services import app
from lms.errors import LmsError, UsageError
from lms.services.base import (
    PortSpec,
    StatePaths,
    pid_belongs_to,
    port_is_free,
    preflight_ports,
    terminate,
)
from lms.services.elasticsearch import render_elasticsearch_yml
from lms.services.kafka import new_cluster_id, render_server_properties
from lms.services.manager import ServiceManager, resolve_names
from lms.services.postgres import render_conf, render_hba
from lms.services.s3 import render_s3proxy_conf
from lms.settings import REPO_ROOT, Settings


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_port_in_use_gives_one_clear_line(tmp_path: Path) -> None:
    with _bound_socket() as sock:
        port = sock.getsockname()[1]
        assert not port_is_free(port)
        log = tmp_path / "logs" / "s3.log"
        with pytest.raises(LmsError) as err:
            preflight_ports("s3", [PortSpec(port, "LMS_S3_PORT")], log)
    msg = str(err.value)
    assert "\n" not in msg
    assert "s3" in msg and str(port) in msg and "LMS_S3_PORT" in msg and "s3.log" in msg


def test_manager_up_preflight_refuses_taken_port(tmp_path: Path) -> None:
    with _bound_socket() as sock:
        port = sock.getsockname()[1]
        settings = Settings(state_dir=tmp_path / "state", s3_port=port)
        manager = ServiceManager(settings)
        with pytest.raises(LmsError) as err:
            manager.up(["s3"], run_hooks=False)
    assert "LMS_S3_PORT" in str(err.value) and str(port) in str(err.value)


def test_free_port_is_free() -> None:
    with _bound_socket() as sock:
        port = sock.getsockname()[1]
    assert port_is_free(port)


def test_pid_ownership_refuses_foreign_pid(tmp_path: Path) -> None:
    marker = str(tmp_path / "data" / "kafka")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not pid_belongs_to(proc.pid, marker)
        assert not pid_belongs_to(os.getpid(), marker)
        with pytest.raises(LmsError):
            terminate(proc.pid, marker, 15, timeout=1)
        assert proc.poll() is None  # never signalled
    finally:
        proc.kill()
        proc.wait()


def test_pid_ownership_accepts_own_marker_and_stops_it(tmp_path: Path) -> None:
    marker = str(tmp_path / "data" / "svc")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", marker], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10  # the child may not have exec'd python yet
        while not pid_belongs_to(proc.pid, marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_belongs_to(proc.pid, marker)
        killed = terminate(proc.pid, marker, 15, timeout=5)
        assert killed is False
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    manager = ServiceManager(settings)
    svc = manager.services["kafka"]
    StatePaths(tmp_path).ensure()
    svc.data_link.mkdir(parents=True)
    svc.pid_path.write_text(f"{os.getpid()}\n")  # our own pid: alive, but not kafka
    assert svc.running_pid() is None
    assert svc.status().health == "stopped"


def test_kafka_properties_loopback_and_ports(tmp_path: Path) -> None:
    text = render_server_properties(port=41092, controller_port=41093, log_dir=tmp_path)
    assert "listeners=PLAINTEXT://127.0.0.1:41092,CONTROLLER://127.0.0.1:41093" in text
    assert "advertised.listeners=PLAINTEXT://127.0.0.1:41092" in text
    assert "controller.quorum.voters=1@127.0.0.1:41093" in text
    assert f"log.dirs={tmp_path}" in text
    assert "0.0.0.0" not in text
    assert not new_cluster_id().startswith("-")
    assert len(new_cluster_id()) == 22


def test_elasticsearch_yml_loopback_and_ports(tmp_path: Path) -> None:
    text = render_elasticsearch_yml(
        http_port=41200,
        transport_port=41300,
        data_path=tmp_path / "d",
        logs_path=tmp_path / "l",
        security_module=True,
    )
    assert "network.host: 127.0.0.1" in text
    assert "http.port: 41200" in text and "transport.port: 41300" in text
    assert "discovery.type: single-node" in text
    assert "xpack.security.enabled: false" in text
    no_sec = render_elasticsearch_yml(
        http_port=1, transport_port=2, data_path=tmp_path, logs_path=tmp_path, security_module=False
    )
    assert "xpack.security" not in no_sec


def test_postgres_and_s3_config(tmp_path: Path) -> None:
    conf = render_conf(45432)
    assert "listen_addresses = '127.0.0.1'" in conf and "port = 45432" in conf
    assert "trust" not in render_hba() and "127.0.0.1/32" in render_hba()
    s3 = render_s3proxy_conf(port=45000, identity="id", credential="secret", basedir=tmp_path)
    assert "s3proxy.endpoint=http://127.0.0.1:45000" in s3
    assert "s3proxy.identity=id" in s3 and "jclouds.provider=filesystem-nio2" in s3


def test_s3proxy_logs_warnings_not_every_request(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from lms.services.base import StatePaths, current_user
    from lms.services.s3 import S3

    svc = S3(Settings(), StatePaths(tmp_path))
    data = tmp_path / "data" / "s3"
    svc.prepare(data, current_user(), lambda line: None)
    argv, _, _ = svc.command(data, current_user())
    config = data.resolve() / "conf" / "logback.xml"
    assert f"-Dlogback.configurationFile={config}" in argv
    # Without a configuration logback logs DEBUG: several MB/s under load.
    assert ET.parse(config).getroot().find("root").get("level") == "WARN"  # type: ignore[union-attr]


def test_resolve_names() -> None:
    assert resolve_names(None) == ["postgres", "kafka", "s3", "elasticsearch", "bigquery"]
    assert resolve_names(["es", "pg"]) == ["postgres", "elasticsearch"]
    with pytest.raises(UsageError):
        resolve_names(["nosuch"])


def test_cli_unknown_service_is_usage_error() -> None:
    result = CliRunner().invoke(app, ["status", "nosuch"])
    assert isinstance(result.exception, UsageError)


def test_lms_cli_unknown_service_exit_2_one_line() -> None:
    lms = REPO_ROOT / ".venv" / "bin" / "lms"
    if not lms.exists():
        pytest.skip("no .venv/bin/lms")
    result = subprocess.run(
        [str(lms), "services", "status", "nosuch"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown service 'nosuch'" in lines[0]


def test_lms_cli_setting_that_does_not_parse_is_one_line() -> None:
    lms = REPO_ROOT / ".venv" / "bin" / "lms"
    if not lms.exists():
        pytest.skip("no .venv/bin/lms")
    env = {**os.environ, "LMS_STREAM_NICE": "50"}
    result = subprocess.run(
        [str(lms), "services", "status"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "stream_nice: Input should be less than or equal to 19" in lines[0]
