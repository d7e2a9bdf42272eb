"""Elasticsearch 8: the minimal runnable distribution (integ-test-zip) from Maven Central.

The zip is fetched with Maven (``tools/maven/elasticsearch/pom.xml``) into ``~/.m2`` and
``<cache>/downloads``, then unpacked once into a shared directory readable by the service user
(``/var/cache/lms-platform/dist`` as root, ``<cache>/dist`` otherwise). Elasticsearch refuses to
run as root, so as root it runs as the unprivileged service user. Its configuration, data, logs
and temp dir live in the service's data directory (``ES_PATH_CONF`` points there).

The distribution is stripped: ``modules/`` decides which settings exist (for instance
``xpack.security.enabled`` only if ``x-pack-security`` is there).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from lms.errors import LmsError
from lms.services.base import (
    TOOLS_DIR,
    PortSpec,
    Reporter,
    RunAs,
    Service,
    cache_root,
    chown_tree,
    extra_setting,
    file_lock,
    java_home_and_bin,
    make_dir,
    maven_copy_dependencies,
    shared_dist_root,
)

ES_VERSION = "8.19.21"
HEAP = "-Xms512m -Xmx512m"
DEFAULT_TRANSPORT_PORT = 19300


def download_dir() -> Path:
    return cache_root() / "downloads" / f"elasticsearch-{ES_VERSION}"


def dist_dir() -> Path:
    return shared_dist_root() / f"elasticsearch-{ES_VERSION}"


def unpack_zip(zip_path: Path, dest: Path, strip_top: bool = True) -> None:
    """Unpack keeping Unix modes (zipfile drops them), readable by everyone."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if strip_top:
                parts = parts[1:]
            if not parts or ".." in parts:
                continue
            target = dest.joinpath(*parts)
            mode = (info.external_attr >> 16) & 0o777
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, 0o755)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            executable = bool(mode & stat.S_IXUSR)
            os.chmod(target, 0o755 if executable else 0o644)


def modules(dist: Path) -> set[str]:
    mod_dir = dist / "modules"
    return {p.name for p in mod_dir.iterdir()} if mod_dir.is_dir() else set()


def render_elasticsearch_yml(
    *,
    http_port: int,
    transport_port: int,
    data_path: Path,
    logs_path: Path,
    security_module: bool,
) -> str:
    lines = [
        "# Written by lms services on every start; edit lms/services/elasticsearch.py instead.",
        "cluster.name: lms-local",
        "node.name: lms-local-1",
        "discovery.type: single-node",
        "network.host: 127.0.0.1",
        f"http.port: {http_port}",
        f"transport.port: {transport_port}",
        f"path.data: {data_path}",
        f"path.logs: {logs_path}",
        # A full developer disk must not turn the indices read-only.
        "cluster.routing.allocation.disk.threshold_enabled: false",
    ]
    if security_module:
        lines.append("xpack.security.enabled: false")
    return "\n".join(lines) + "\n"


class Elasticsearch(Service):
    name = "elasticsearch"
    unprivileged = True
    start_timeout = 240.0
    stop_timeout = 60.0

    @property
    def transport_port(self) -> int:
        return extra_setting(self.settings, "es_transport_port", DEFAULT_TRANSPORT_PORT)

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(self.settings.es_port, "LMS_ES_PORT", "HTTP port"),
            PortSpec(self.transport_port, "LMS_ES_TRANSPORT_PORT", "transport port"),
        ]

    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.es_port}"

    def install(self, report: Reporter) -> None:
        java_home_and_bin(17)
        dist = dist_dir()
        if (dist / ".complete").exists():
            return
        maven_copy_dependencies(
            TOOLS_DIR / "maven" / "elasticsearch" / "pom.xml",
            download_dir(),
            report,
            f"Elasticsearch {ES_VERSION} (integ-test-zip)",
            {"es.version": ES_VERSION},
        )
        zips = sorted(download_dir().glob("elasticsearch-*.zip"))
        if not zips:
            raise LmsError(f"elasticsearch: no zip in {download_dir()} after the Maven download")
        with file_lock(cache_root() / "locks" / "elasticsearch-unpack.lock"):
            if (dist / ".complete").exists():
                return
            report(f"unpacking {zips[0].name} into {dist}")
            started = time.monotonic()
            make_dir(dist.parent)
            tmp = dist.with_name(dist.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            unpack_zip(zips[0], tmp)
            if dist.exists():
                shutil.rmtree(dist)
            tmp.rename(dist)
            os.chmod(dist, 0o755)
            (dist / ".complete").write_text(f"{time.time()}\n")
            report(f"Elasticsearch unpacked in {time.monotonic() - started:.0f}s")

    def prepare(self, data: Path, run_as: RunAs, report: Reporter) -> None:
        real = data.resolve()
        dist = dist_dir()
        conf = real / "config"
        for sub in ("config", "data", "logs", "tmp", "config/jvm.options.d"):
            make_dir(real / sub)
        for name in ("jvm.options", "log4j2.properties"):
            if not (conf / name).exists():
                shutil.copy2(dist / "config" / name, conf / name)
        (conf / "elasticsearch.yml").write_text(
            render_elasticsearch_yml(
                http_port=self.settings.es_port,
                transport_port=self.transport_port,
                data_path=real / "data",
                logs_path=real / "logs",
                security_module="x-pack-security" in modules(dist),
            )
        )
        (conf / "jvm.options.d" / "lms-heap.options").write_text(
            "# Written by lms services: keep the heap small (the machine also runs Spark/Flink).\n"
            + "\n".join(HEAP.split())
            + "\n"
        )
        chown_tree(real, run_as)

    def command(self, data: Path, run_as: RunAs) -> tuple[list[str], dict[str, str], Path]:
        real = data.resolve()
        java_home, _ = java_home_and_bin(17)
        marker = f"-Dlms.service.data={real}"
        env = {
            "ES_PATH_CONF": str(real / "config"),
            "ES_TMPDIR": str(real / "tmp"),
            "ES_JAVA_OPTS": f"{HEAP} {marker}",
            "CLI_JAVA_OPTS": marker,
            "HOME": str(real),
        }
        if java_home is not None:
            env["ES_JAVA_HOME"] = str(java_home)
        return [str(dist_dir() / "bin" / "elasticsearch")], env, real

    def probe(self) -> tuple[bool, str]:
        url = f"http://127.0.0.1:{self.settings.es_port}/_cluster/health?timeout=2s"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code} from /_cluster/health"
        except (OSError, ValueError) as exc:
            return False, str(exc)
        status = body.get("status")
        if status in ("green", "yellow"):
            return True, f"Elasticsearch {ES_VERSION}, cluster {status}"
        return False, f"cluster status {status}"
