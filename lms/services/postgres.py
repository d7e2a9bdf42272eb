"""PostgreSQL: a project-owned cluster (the OLTP database and the local warehouse).

initdb + ``postgres`` from ``/usr/lib/postgresql/<v>/bin`` (the newest installed; Debian's
``postgresql`` package is installed with apt-get when missing and running as root). PostgreSQL
refuses to run as root, so as root the cluster runs as the unprivileged service user.

Auth: TCP on 127.0.0.1 only, scram-sha-256; Unix sockets are disabled (no socket-path limits, no
stray sockets in /tmp). ``settings.pg_user`` is the cluster's bootstrap superuser, created by
initdb with ``settings.pg_password``; it owns both databases.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from lms.errors import LmsError
from lms.services.base import (
    PortSpec,
    Reporter,
    RunAs,
    Service,
    apt_install,
    chown_tree,
)

PG_LIB = Path("/usr/lib/postgresql")


def find_pg_bin() -> Path | None:
    """The bin directory of the newest PostgreSQL under /usr/lib/postgresql, if any."""
    best: tuple[int, Path] | None = None
    if PG_LIB.is_dir():
        for candidate in PG_LIB.iterdir():
            bin_dir = candidate / "bin"
            if candidate.name.isdigit() and (bin_dir / "initdb").exists():
                version = int(candidate.name)
                if best is None or version > best[0]:
                    best = (version, bin_dir)
    return best[1] if best else None


def render_conf(port: int) -> str:
    """Settings appended to postgresql.conf (via include): loopback only, small memory."""
    return f"""# Written by lms services on every start; edit lms/services/postgres.py instead.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 60
shared_buffers = 128MB
work_mem = 8MB
maintenance_work_mem = 64MB
effective_cache_size = 512MB
wal_buffers = 4MB
max_wal_size = 512MB
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
password_encryption = scram-sha-256
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] '
"""


def render_hba() -> str:
    return """# Written by lms services: password (SCRAM) over loopback TCP only.
# TYPE  DATABASE  USER  ADDRESS        METHOD
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
"""


class Postgres(Service):
    name = "postgres"
    unprivileged = True
    start_timeout = 60.0
    stop_timeout = 30.0
    stop_signal = signal.SIGINT  # "fast" shutdown, what `pg_ctl stop -m fast` sends

    def ports(self) -> list[PortSpec]:
        return [PortSpec(self.settings.pg_port, "LMS_PG_PORT")]

    def address(self) -> str:
        return f"{self.settings.pg_host}:{self.settings.pg_port}"

    def bin_dir(self) -> Path:
        found = find_pg_bin()
        if found is None:
            raise LmsError(
                "PostgreSQL is not installed (no /usr/lib/postgresql/<v>/bin/initdb): "
                "apt-get install -y postgresql"
            )
        return found

    def install(self, report: Reporter) -> None:
        if find_pg_bin() is None:
            apt_install(["postgresql"], report, "PostgreSQL server binaries are missing")
        self.bin_dir()

    def pgdata(self, data: Path) -> Path:
        return data / "pgdata"

    def prepare(self, data: Path, run_as: RunAs, report: Reporter) -> None:
        pgdata = self.pgdata(data)
        if not (pgdata / "PG_VERSION").exists():
            report(f"initialising a new cluster in {pgdata.resolve()}")
            pwfile = data / ".pwfile"
            pwfile.write_text(self.settings.pg_password + "\n")
            pwfile.chmod(0o600)
            chown_tree(data, run_as)
            try:
                result = subprocess.run(
                    [
                        str(self.bin_dir() / "initdb"),
                        "-D",
                        str(pgdata.resolve()),
                        "-U",
                        self.settings.pg_user,
                        f"--pwfile={pwfile.resolve()}",
                        "--auth-host=scram-sha-256",
                        "--auth-local=scram-sha-256",
                        "--encoding=UTF8",
                        "--no-locale",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    cwd=str(data.resolve()),
                    **run_as.popen_kwargs(),
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if result.returncode != 0:
                with open(self.log_path, "a") as log:
                    log.write(result.stdout + result.stderr)
                lines = (result.stderr or result.stdout).strip().splitlines()
                raise LmsError(
                    f"postgres: initdb failed ({lines[-1] if lines else result.returncode}); "
                    f"see {self.log_path}"
                )
        conf = pgdata / "postgresql.conf"
        text = conf.read_text()
        if not re.search(r"^include_if_exists = 'lms.conf'", text, re.M):
            conf.write_text(text + "\ninclude_if_exists = 'lms.conf'\n")
        (pgdata / "lms.conf").write_text(render_conf(self.settings.pg_port))
        (pgdata / "pg_hba.conf").write_text(render_hba())
        if run_as.switch:
            for name in ("postgresql.conf", "lms.conf", "pg_hba.conf"):
                os.chown(pgdata / name, run_as.uid, run_as.gid)

    def command(self, data: Path, run_as: RunAs) -> tuple[list[str], dict[str, str], Path]:
        pgdata = self.pgdata(data).resolve()
        env = {"PGDATA": str(pgdata), "LC_ALL": "C", "HOME": str(data.resolve())}
        return [str(self.bin_dir() / "postgres"), "-D", str(pgdata)], env, data.resolve()

    def _connect(self, dbname: str, timeout: int = 3):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            host=self.settings.pg_host,
            port=self.settings.pg_port,
            user=self.settings.pg_user,
            password=self.settings.pg_password,
            dbname=dbname,
            connect_timeout=timeout,
            autocommit=True,
        )

    def probe(self) -> tuple[bool, str]:
        try:
            with self._connect("postgres", timeout=2) as conn:
                version = conn.execute("show server_version").fetchone()
        except Exception as exc:
            return False, str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return True, f"PostgreSQL {version[0] if version else '?'}"

    def ensure(self, report: Reporter) -> None:
        from psycopg import sql

        user = self.settings.pg_user
        with self._connect("postgres") as conn:
            for db in (self.settings.pg_oltp_db, self.settings.pg_warehouse_db):
                exists = conn.execute("select 1 from pg_database where datname = %s", (db,))
                if exists.fetchone() is None:
                    report(f"creating database {db} owned by {user}")
                    conn.execute(
                        sql.SQL("create database {} owner {}").format(
                            sql.Identifier(db), sql.Identifier(user)
                        )
                    )
