#!/usr/bin/env bash
# Creates (or refreshes) the project's two Python environments from the committed lock files.
# Idempotent: an environment whose lock has not changed since its last sync is left alone.
#
#   .venv            the platform: dbt, Spark, Kafka/ES/S3/BigQuery clients, Prefect, XGBoost, FastAPI
#   streaming/.venv  the streaming jobs: apache-flink and what its jobs need (Flink's pins fight the
#                    platform's, so it is resolved on its own)
#
# Packages are cached in uv's cache (~/.cache/uv), outside the clone. Service binaries (Maven jars,
# Elasticsearch, the BigQuery emulator, PostgreSQL from apt) are installed by `lms services up`.
set -euo pipefail

cd "$(dirname "$0")/.."
UV_VERSION=0.13.8

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

python_311() {
    local candidate
    for candidate in "${LMS_PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

PY=$(python_311) || die "Python 3.11 is required (set LMS_PYTHON to its path)"
command -v java >/dev/null 2>&1 || say "warning: java not found; the services need Java 17 (apt-get install openjdk-17-jre-headless)"

# uv lives in the platform environment itself (it is pinned in the lock, so a sync keeps it).
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $PY"
    "$PY" -m venv .venv
fi
if ! .venv/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    say "installing uv $UV_VERSION into .venv"
    .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --upgrade >/dev/null
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
UV=.venv/bin/uv

lock_digest() { sha256sum "$1" | cut -d' ' -f1; }

# Environments are synced with their bytecode compiled. uv leaves that to the first import by
# default, and where PYTHONDONTWRITEBYTECODE is set (this CI machine sets it) no import ever
# writes it: every process compiled its imports from source again. dbt alone took 3-4 s longer to
# start (building one small model: 7.4 s against 10.8-12.1 s), and every `lms` command and
# test process paid its share.
# The stamp names the compile, so environments synced before it existed are synced once more.
sync_env() {  # sync_env <venv dir> <lock file>
    local venv=$1 lock=$2 stamp="$1/.lms-lock-sha256" want
    want="$(lock_digest "$lock") compiled"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "$venv is up to date with $lock"
        return 0
    fi
    [ -x "$venv/bin/python" ] || "$UV" venv --quiet --python "$PY" "$venv"
    say "syncing $venv from $lock"
    "$UV" pip sync --quiet --compile-bytecode --python "$venv/bin/python" "$lock"
    echo "$want" >"$stamp"
}

sync_env .venv requirements/platform.lock
# The project itself, editable, so `.venv/bin/lms` runs the checkout's code (re-run cheaply every time:
# a sync removes it, and a new clone needs it).
if ! .venv/bin/python -c 'import lms, sys; sys.exit(not lms.__file__.startswith(sys.argv[1]))' "$PWD" 2>/dev/null ||
    [ ! -x .venv/bin/lms ]; then
    say "installing the project (editable) into .venv"
    "$UV" pip install --quiet --python .venv/bin/python --no-deps -e .
fi

sync_env streaming/.venv requirements/streaming.lock

say "ready: .venv/bin/lms and streaming/.venv/bin/python"
