"""BigQuery: the goccy bigquery-emulator (pure Go), standing in for BigQuery locally.

Built from the Go module in ``tools/bigquery-emulator`` (its go.mod pins the emulator version as a
``tool``; ``go install ...@version`` does not work because the proxy refuses the module's version
list, while the pinned module downloads fine). The binary goes to
``<cache>/bin/bigquery-emulator-<version>``; Go's module and build caches are the usual ones.
Tables persist in ``<state>/data/bigquery/bigquery.db`` (the emulator's ``--database``).

Clients: google-cloud-bigquery with ``client_options={"api_endpoint": settings.bq_endpoint_url}``
and ``AnonymousCredentials`` — see :func:`bq_client`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lms.errors import LmsError
from lms.services.base import (
    TOOLS_DIR,
    PortSpec,
    Reporter,
    RunAs,
    Service,
    cache_root,
    file_lock,
    make_dir,
)
from lms.settings import Settings

MODULE_DIR = TOOLS_DIR / "bigquery-emulator"
PACKAGE = "github.com/goccy/bigquery-emulator/cmd/bigquery-emulator"


def emulator_version() -> str:
    """The emulator version pinned in tools/bigquery-emulator/go.mod."""
    text = (MODULE_DIR / "go.mod").read_text()
    match = re.search(r"github\.com/goccy/bigquery-emulator\s+(v[0-9][^\s]*)", text)
    if not match:
        raise LmsError(f"cannot find the bigquery-emulator version in {MODULE_DIR / 'go.mod'}")
    return match.group(1)


def binary_path() -> Path:
    return cache_root() / "bin" / f"bigquery-emulator-{emulator_version()}"


def go_executable() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    for candidate in (Path("/usr/local/go/bin/go"), Path.home() / "go" / "bin" / "go"):
        if candidate.exists():
            return str(candidate)
    return None


def bq_client(settings: Settings, project: str | None = None) -> Any:
    """A google-cloud-bigquery client: the emulator (anonymous) locally or wherever
    ``LMS_BQ_ENDPOINT`` points; in production, with no endpoint set, the environment's Google
    credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity)."""
    from google.cloud import bigquery

    if settings.bq_endpoint is None and settings.env != "local":
        return bigquery.Client(project=project or settings.bq_project)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return bigquery.Client(
        project=project or settings.bq_project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=settings.bq_endpoint_url),
    )


class BigQuery(Service):
    name = "bigquery"
    start_timeout = 60.0
    stop_timeout = 15.0

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(self.settings.bq_port, "LMS_BQ_PORT", "HTTP port"),
            PortSpec(self.settings.bq_grpc_port, "LMS_BQ_GRPC_PORT", "gRPC port"),
        ]

    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.bq_port}"

    def install(self, report: Reporter) -> None:
        binary = binary_path()
        if binary.exists():
            return
        go = go_executable()
        if go is None:
            raise LmsError(
                "bigquery: Go (1.25+) is needed to build the BigQuery emulator: install it from "
                "https://go.dev/dl or apt-get install -y golang (if new enough)"
            )
        with file_lock(cache_root() / "locks" / "bigquery-build.lock"):
            if binary.exists():
                return
            make_dir(binary.parent)
            tmp = binary.with_name(binary.name + ".partial")
            report(
                f"building bigquery-emulator {emulator_version()} with Go "
                "(cold: ~10 min on 2 cores; cached afterwards)"
            )
            started = time.monotonic()
            env = {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0")}
            log = self.log_path
            make_dir(log.parent)
            with open(log, "ab") as fh:
                fh.write(b"=== lms services: go build bigquery-emulator ===\n")
                fh.flush()
                result = subprocess.run(
                    [go, "build", "-o", str(tmp), PACKAGE],
                    cwd=str(MODULE_DIR),
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if result.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise LmsError(f"bigquery: go build of the emulator failed; see {log}")
            tmp.replace(binary)
            report(f"bigquery-emulator built in {time.monotonic() - started:.0f}s")

    def prepare(self, data: Path, run_as: RunAs, report: Reporter) -> None:
        make_dir(data.resolve())

    def command(self, data: Path, run_as: RunAs) -> tuple[list[str], dict[str, str], Path]:
        real = data.resolve()
        argv = [
            str(binary_path()),
            f"--project={self.settings.bq_project}",
            f"--dataset={self.settings.bq_dataset}",
            "--host=127.0.0.1",
            f"--port={self.settings.bq_port}",
            f"--grpc-port={self.settings.bq_grpc_port}",
            f"--database={real / 'bigquery.db'}",
            "--log-level=info",
        ]
        return argv, {}, real

    def probe(self) -> tuple[bool, str]:
        project = self.settings.bq_project
        url = f"http://127.0.0.1:{self.settings.bq_port}/bigquery/v2/projects/{project}/datasets"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code} listing datasets of {project}"
        except (OSError, ValueError) as exc:
            return False, str(exc)
        datasets = [
            d.get("datasetReference", {}).get("datasetId") for d in body.get("datasets", [])
        ]
        return (
            True,
            f"bigquery-emulator {emulator_version()}, datasets: {', '.join(map(str, datasets)) or '-'}",
        )
