"""sqlfluff with the dbt templater over every model: it renders each one the way dbt does (that
needs the warehouse for dbt's introspection, hence an integration test) and must find nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lms.settings import REPO_ROOT, get_settings
from lms.warehouse.dbt import dbt_env

# Spark landing plus full dbt builds: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


def test_sqlfluff_finds_nothing_in_the_dbt_models() -> None:
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    result = subprocess.run(
        [str(sqlfluff), "lint", "dbt_project/models", "--disable-progress-bar", "--processes", "2"],
        cwd=REPO_ROOT,
        env=dbt_env(get_settings()),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    violations = [line for line in result.stdout.splitlines() if line.startswith(("L:", "=="))]
    assert result.returncode == 0, "\n".join(violations[:60]) or result.stderr[-2000:]
