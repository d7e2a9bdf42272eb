"""Shared machinery for the local services: state layout, processes, ports, installs.

Every service is a subclass of :class:`Service`. The manager (``lms.services.manager``) drives
them; this module holds what they share:

* :class:`StatePaths` — the layout under ``settings.state_dir`` (``data/<svc>``, ``logs/<svc>.log``,
  ``run/<svc>.pid``, ``run/<svc>.lock``).
* process helpers — detached start (own session, log file as stdout/stderr), pid files, and the
  ownership check (``/proc/<pid>/cmdline`` must contain the service's data directory) that keeps
  ``down`` from ever signalling a process the project did not start.
* port preflight — a clear one-line error naming the service, the port, the env var and the log.
* the unprivileged service user (PostgreSQL and Elasticsearch refuse to run as root) and the
  fallback data directory used when that user cannot traverse the state directory.
* install helpers — Maven resolution into ``~/.m2`` then into a cache outside the clone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from lms.errors import LmsError
from lms.settings import REPO_ROOT, Settings

Health = Literal["healthy", "unhealthy", "stopped"]
Action = Literal["started", "already running", "stopped", "not running"]
Reporter = Callable[[str], None]

#: The unprivileged system user that runs PostgreSQL and Elasticsearch when the CLI runs as root.
SERVICE_USER = os.environ.get("LMS_SERVICE_USER", "lms-svc")
#: Where a service's data goes when SERVICE_USER cannot reach the state directory (root only).
FALLBACK_DATA_ROOT = Path(os.environ.get("LMS_SERVICE_FALLBACK_ROOT", "/var/lib/lms-platform"))
TOOLS_DIR = REPO_ROOT / "tools"


def _noop(_: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# Settings that are not (yet) fields of lms.settings.Settings


def extra_setting(settings: Settings, name: str, default: int) -> int:
    """A setting the shared Settings may not declare yet: the field if present, else LMS_<NAME>."""
    value = getattr(settings, name, None)
    if value is not None:
        return int(value)
    raw = os.environ.get(f"LMS_{name.upper()}")
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise LmsError(f"LMS_{name.upper()}={raw!r} is not an integer") from exc


# --------------------------------------------------------------------------------------------
# Locations


def cache_root() -> Path:
    """Downloads and builds shared by every clone: $LMS_CACHE_DIR or ~/.cache/lms-platform."""
    explicit = os.environ.get("LMS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "lms-platform"


def shared_dist_root() -> Path:
    """Unpacked distributions that the unprivileged service user must be able to read.

    As root, ``~/.cache`` is usually mode 700, so these go to ``/var/cache/lms-platform/dist``.
    """
    explicit = os.environ.get("LMS_SHARED_DIST_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/cache/lms-platform/dist")
    return cache_root() / "dist"


@dataclass(frozen=True)
class StatePaths:
    """The layout of the git-ignored state directory."""

    root: Path

    def data(self, svc: str) -> Path:
        return self.root / "data" / svc

    def log(self, svc: str) -> Path:
        return self.root / "logs" / f"{svc}.log"

    def pid(self, svc: str) -> Path:
        return self.root / "run" / f"{svc}.pid"

    def lock(self, svc: str) -> Path:
        return self.root / "run" / f"{svc}.lock"

    def ensure(self) -> None:
        for sub in ("data", "logs", "run"):
            make_dir(self.root / sub)


def make_dir(path: Path, mode: int = 0o755) -> bool:
    """Create ``path`` (and parents); set ``mode`` only on directories created here."""
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):
            os.chmod(created, mode)
    return bool(missing)


def display_path(path: Path) -> str:
    """A path relative to the current directory when it is inside it (shorter messages)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# Locks


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held across processes (two `lms services up` at once)."""
    make_dir(path.parent)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Ports


@dataclass(frozen=True)
class PortSpec:
    port: int
    env_var: str
    role: str = "port"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing is bound to host:port (listening or merely bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_listening(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_holder(port: int) -> str | None:
    """Best effort: 'pid 123 (python3)' of the process bound to ``port``, if /proc tells."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    inodes.discard("0")
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    comm = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({comm})"
        except OSError:
            continue
    return None


def port_in_use_message(svc: str, spec: PortSpec, log_path: Path) -> str:
    holder = port_holder(spec.port)
    by = f" by {holder}" if holder else " by another process"
    return (
        f"{svc}: {spec.role} {spec.port} on 127.0.0.1 is already in use{by}; stop that process "
        f"or choose another port with {spec.env_var}=<port> (log: {display_path(log_path)})"
    )


def preflight_ports(svc: str, ports: list[PortSpec], log_path: Path) -> None:
    """Raise the one-line error when a port the service needs is taken by someone else."""
    for spec in ports:
        if not port_is_free(spec.port):
            raise LmsError(port_in_use_message(svc, spec, log_path))


# --------------------------------------------------------------------------------------------
# Processes


def read_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # zombie or kernel thread
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def pid_belongs_to(pid: int, marker: str) -> bool:
    """True only if ``pid`` is alive and its command line mentions ``marker``.

    The marker is the service's (resolved) data directory, which every service puts on its
    command line, so a pid reused by an unrelated process is never mistaken for the service.
    """
    if pid <= 1 or not marker:
        return False
    args = read_cmdline(pid)
    if args is None:
        return False
    return any(marker in arg for arg in args)


def read_pid_file(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    first = text.splitlines()[0] if text else ""
    return int(first) if first.isdigit() else None


def write_pid_file(path: Path, pid: int) -> None:
    make_dir(path.parent)
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def process_group_members(pgid: int, marker: str) -> list[int]:
    """Pids in process group ``pgid`` whose command line carries ``marker``."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        # fields after the ')' of comm: state ppid pgrp ...
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) >= 3 and int(rest[2]) == pgid and pid_belongs_to(pid, marker):
            members.append(pid)
    return members


def _alive(pid: int, marker: str) -> bool:
    return pid_belongs_to(pid, marker)


def terminate(pid: int, marker: str, sig: int, timeout: float) -> bool:
    """Stop our process: ``sig`` first, SIGKILL (whole process group) after ``timeout``.

    Returns True if it had to be killed. Refuses (LmsError) a pid that is not the service's.
    """
    if not pid_belongs_to(pid, marker):
        raise LmsError(f"refusing to signal pid {pid}: it does not belong to this service")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, marker) and not process_group_members(pid, marker):
            return False
        time.sleep(0.2)
    # The leader started its own session, so its pgid is its pid; only members carrying the
    # service's marker are killed.
    for member in {pid, *process_group_members(pid, marker)}:
        if pid_belongs_to(member, marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid, marker):
        time.sleep(0.1)
    return True


def last_log_line(log_path: Path, since: int = 0, max_len: int = 300) -> str | None:
    """The most telling line of the log written since byte offset ``since``."""
    try:
        with open(log_path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(since, size - 64 * 1024)
            fh.seek(start)
            lines = [
                ln.strip()
                for ln in fh.read().decode(errors="replace").splitlines()
                if ln.strip() and not ln.startswith("=== lms services")
            ]
    except OSError:
        return None
    if not lines:
        return None
    pattern = re.compile(r"\b(FATAL|ERROR|PANIC|Exception|error|fatal|panic)\b")
    for line in reversed(lines):
        if pattern.search(line):
            return line[:max_len]
    return lines[-1][:max_len]


# --------------------------------------------------------------------------------------------
# Users


@dataclass(frozen=True)
class RunAs:
    """Who a service process runs as: the current user, or the unprivileged service user."""

    user: str
    uid: int
    gid: int
    home: str
    switch: bool  # True when the process must change user (we are root)

    def popen_kwargs(self) -> dict[str, Any]:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def current_user() -> RunAs:
    entry = pwd.getpwuid(os.geteuid())
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, switch=False)


def ensure_service_user(report: Reporter = _noop) -> RunAs:
    """The unprivileged user for services that refuse root; created (useradd) if missing."""
    if os.geteuid() != 0:
        return current_user()
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            raise LmsError(
                f"cannot create the service user {SERVICE_USER!r}: useradd is missing "
                "(apt-get install -y passwd) or run as a non-root user"
            ) from None
        report(f"creating system user {SERVICE_USER}")
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        # exit 9: created meanwhile by a concurrent `up`
        if result.returncode not in (0, 9):
            raise LmsError(
                f"useradd {SERVICE_USER} failed: {result.stderr.strip() or result.returncode}"
            ) from None
    entry = pwd.getpwnam(SERVICE_USER)
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, "/nonexistent", switch=True)


def user_can_traverse(run_as: RunAs, path: Path) -> bool:
    """Whether ``run_as`` can reach ``path`` (every ancestor searchable)."""
    if not run_as.switch:
        return os.access(path, os.X_OK)
    result = subprocess.run(
        ["test", "-x", str(path)],
        check=False,
        capture_output=True,
        **run_as.popen_kwargs(),
    )
    return result.returncode == 0


def chown_tree(path: Path, run_as: RunAs) -> None:
    """Give ``path`` (a directory this project created) and its contents to ``run_as``."""
    if not run_as.switch:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, run_as.uid, run_as.gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), run_as.uid, run_as.gid)


def fallback_data_dir(state_root: Path, svc: str) -> Path:
    digest = hashlib.sha256(str(state_root.resolve()).encode()).hexdigest()[:12]
    return FALLBACK_DATA_ROOT / digest / svc


# --------------------------------------------------------------------------------------------
# Java, Maven, apt


def java_home_and_bin(min_version: int = 17) -> tuple[Path | None, Path]:
    """(JAVA_HOME or None, java executable) of a JDK/JRE >= min_version, else LmsError."""
    candidates: list[tuple[Path | None, Path]] = []
    jh = os.environ.get("JAVA_HOME")
    if jh:
        candidates.append((Path(jh), Path(jh) / "bin" / "java"))
    which = shutil.which("java")
    if which:
        real = Path(which).resolve()
        candidates.append((real.parent.parent, real))
    for home, java in candidates:
        if not java.exists():
            continue
        version = java_major_version(java)
        if version is not None and version >= min_version:
            return home, java
    raise LmsError(
        f"Java {min_version}+ is needed (Kafka, s3proxy and Elasticsearch run on the JVM) but none "
        f"was found: install it (apt-get install -y openjdk-{min_version}-jre-headless) or set JAVA_HOME"
    )


def java_major_version(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # 1.8 style
        major = int(match.group(2))
    return major


def apt_install(packages: list[str], report: Reporter, why: str) -> None:
    """Install Debian packages when running as root; otherwise say what to install."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise LmsError(f"{why}: install {' '.join(packages)} (e.g. apt-get install -y ...)")
    with file_lock(cache_root() / "locks" / "apt.lock"):
        report(f"installing {' '.join(packages)} with apt-get ({why})")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
            result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
                raise LmsError(f"{' '.join(cmd)} failed: {tail[0] if tail else result.returncode}")


def mvn_executable(report: Reporter) -> str:
    found = shutil.which("mvn")
    if found:
        return found
    apt_install(["maven"], report, "Maven is needed to fetch Kafka, s3proxy and Elasticsearch")
    found = shutil.which("mvn")
    if not found:
        raise LmsError("Maven (mvn) is still missing after apt-get install maven")
    return found


def maven_copy_dependencies(
    pom: Path,
    out_dir: Path,
    report: Reporter,
    what: str,
    properties: dict[str, str] | None = None,
) -> float:
    """Resolve ``pom``'s dependencies (into ~/.m2) and copy them into ``out_dir`` atomically.

    Skipped when ``out_dir`` is already complete. Returns the seconds spent (0 when skipped).
    """
    done = out_dir / ".complete"
    if done.exists():
        return 0.0
    java_home_and_bin()  # Maven needs Java too: say so clearly
    with file_lock(cache_root() / "locks" / "maven.lock"):
        if done.exists():
            return 0.0
        mvn = mvn_executable(report)
        report(f"resolving {what} from Maven Central (cached in ~/.m2)")
        tmp = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        make_dir(tmp)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
        ]
        cmd += [f"-D{k}={v}" for k, v in (properties or {}).items()]
        started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = [
                ln for ln in (result.stdout + result.stderr).splitlines() if "ERROR" in ln
            ] or (result.stdout + result.stderr).splitlines()
            detail = lines[0].strip() if lines else f"exit {result.returncode}"
            raise LmsError(f"Maven could not resolve {what} ({pom}): {detail}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        (out_dir / ".complete").write_text(f"{time.time()}\n")
        elapsed = time.monotonic() - started
        report(f"{what} resolved in {elapsed:.0f}s")
        return elapsed


# --------------------------------------------------------------------------------------------
# Status


@dataclass(frozen=True)
class ServiceStatus:
    """What `status` knows about one service (also the result of `up` and `down`)."""

    name: str
    address: str
    health: Health
    pid: int | None
    log: str
    data: str
    detail: str = ""
    action: Action | None = None

    @property
    def healthy(self) -> bool:
        return self.health == "healthy"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# The service base class


class Service(ABC):
    """One local service. Subclasses fill in install/prepare/command/probe."""

    name: ClassVar[str]
    #: Services that refuse root run as SERVICE_USER when the CLI runs as root.
    unprivileged: ClassVar[bool] = False
    start_timeout: ClassVar[float] = 90.0
    stop_timeout: ClassVar[float] = 30.0
    stop_signal: ClassVar[int] = signal.SIGTERM

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        self.settings = settings
        self.paths = paths

    # ---- what subclasses provide ----------------------------------------------------------
    @abstractmethod
    def ports(self) -> list[PortSpec]: ...

    @abstractmethod
    def address(self) -> str: ...

    @abstractmethod
    def install(self, report: Reporter) -> None:
        """Fetch/build what is missing (idempotent, shared cache outside the clone)."""

    @abstractmethod
    def prepare(self, data: Path, run_as: RunAs, report: Reporter) -> None:
        """Render configuration and initialise storage under ``data`` (idempotent)."""

    @abstractmethod
    def command(self, data: Path, run_as: RunAs) -> tuple[list[str], dict[str, str], Path]:
        """(argv, extra environment, working directory). argv must mention ``data``."""

    @abstractmethod
    def probe(self) -> tuple[bool, str]:
        """A cheap health check: (healthy, detail)."""

    def ensure(self, report: Reporter) -> None:  # noqa: B027 - optional hook
        """Idempotent setup once healthy (databases, buckets). Runs on every `up`."""

    # ---- shared behaviour -----------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.paths.log(self.name)

    @property
    def pid_path(self) -> Path:
        return self.paths.pid(self.name)

    @property
    def data_link(self) -> Path:
        return self.paths.data(self.name)

    def marker(self) -> str:
        """The resolved data directory: on the command line of every process we start."""
        return str(self.data_link.resolve())

    def run_as(self, report: Reporter = _noop) -> RunAs:
        if self.unprivileged and os.geteuid() == 0:
            return ensure_service_user(report)
        return current_user()

    def data_note(self) -> str:
        link = self.data_link
        if link.is_symlink():
            return (
                f"data kept in {link.resolve()} because {SERVICE_USER} cannot traverse "
                f"the state directory"
            )
        return ""

    def setup_data_dir(self, run_as: RunAs, report: Reporter) -> Path:
        """Create the data directory; use the fallback outside the state dir if needed."""
        link = self.data_link
        if link.is_symlink():
            target = link.resolve()
            make_dir(target.parent)
            if not target.exists():
                target.mkdir(mode=0o700)
                chown_tree(target, run_as)
            return link
        make_dir(link.parent)
        if not run_as.switch or user_can_traverse(run_as, link.parent):
            if not link.exists():
                link.mkdir(mode=0o700 if run_as.switch else 0o755)
                chown_tree(link, run_as)
            return link
        # The unprivileged user cannot reach the state dir (e.g. a mode-700 mktemp clone).
        target = fallback_data_dir(self.paths.root, self.name)
        if link.exists():
            if any(link.iterdir()):
                raise LmsError(
                    f"{self.name}: {link} is not reachable by {SERVICE_USER} and is not empty; "
                    f"move it to {target} and symlink it, or make the state dir traversable"
                )
            link.rmdir()
        make_dir(target.parent)
        if not target.exists():
            target.mkdir(mode=0o700)
        chown_tree(target, run_as)
        link.symlink_to(target, target_is_directory=True)
        report(f"{SERVICE_USER} cannot traverse {self.paths.root}: data kept in {target}")
        return link

    def running_pid(self) -> int | None:
        """The pid from the pid file if it is alive and really this service's process."""
        pid = read_pid_file(self.pid_path)
        if pid is None or not self.data_link.exists():
            return None
        return pid if pid_belongs_to(pid, self.marker()) else None

    def status(self) -> ServiceStatus:
        pid = self.running_pid()
        if pid is None:
            health: Health = "stopped"
            detail = ""
            # Someone else's process on our port is worth saying.
            for spec in self.ports():
                if port_is_listening(spec.port):
                    holder = port_holder(spec.port)
                    detail = f"port {spec.port} is used by {holder or 'another process'}"
                    break
        else:
            ok, detail = self.probe()
            health = "healthy" if ok else "unhealthy"
        note = self.data_note()
        return ServiceStatus(
            name=self.name,
            address=self.address(),
            health=health,
            pid=pid,
            log=str(self.log_path),
            data=str(self.data_link.resolve()) if self.data_link.exists() else str(self.data_link),
            detail="; ".join(x for x in (detail, note) if x),
        )

    def stop(self, pid: int) -> bool:
        """Graceful stop of our pid, SIGKILL after stop_timeout. True if it was killed."""
        return terminate(pid, self.marker(), self.stop_signal, self.stop_timeout)

    def purge(self) -> None:
        """Delete this service's data (it must be stopped)."""
        link = self.data_link
        if link.is_symlink():
            target = link.resolve()
            shutil.rmtree(target, ignore_errors=True)
            link.unlink()
            with contextlib.suppress(OSError):
                target.parent.rmdir()  # the per-state-dir fallback folder, once empty
        elif link.exists():
            shutil.rmtree(link)
        self.pid_path.unlink(missing_ok=True)


def spawn(
    argv: list[str],
    *,
    log_path: Path,
    cwd: Path,
    env: dict[str, str],
    run_as: RunAs,
    label: str,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a detached process (own session) logging to ``log_path``.

    Returns the process and the log offset where this run's output starts.
    """
    make_dir(log_path.parent)
    with open(log_path, "ab") as log:
        offset = log.seek(0, os.SEEK_END)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log.write(f"=== lms services: starting {label} at {stamp} ===\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(cwd),
                env={**os.environ, **env},
                start_new_session=True,
                close_fds=True,
                **run_as.popen_kwargs(),
            )
        except OSError as exc:
            raise LmsError(f"{label}: could not start {argv[0]}: {exc}") from exc
    return proc, offset
