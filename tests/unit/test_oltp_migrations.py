"""Migration files and runner behaviour that need no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from lms.errors import LmsError
from lms.oltp.migrate import MIGRATIONS_DIR, discover, migrate, status


def test_migrations_are_numbered_contiguously() -> None:
    migrations = discover()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.path.parent == MIGRATIONS_DIR for m in migrations)


def test_every_table_gets_timestamps_trigger_and_updated_at_index() -> None:
    text = "\n".join(m.sql() for m in discover())
    tables = [line.split()[2] for line in text.splitlines() if line.startswith("create table")]
    assert len(tables) == 12
    for table in tables:
        name = table.removeprefix("lms.")
        assert f"create trigger {name}_set_updated_at" in text, name
        assert f"on {table} (updated_at)" in text, name


def test_misnamed_or_duplicate_migrations_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("select 1;")
    (tmp_path / "2_bad.sql").write_text("select 1;")
    with pytest.raises(LmsError, match=r"NNNN_lowercase_name\.sql"):
        discover(tmp_path)
    (tmp_path / "2_bad.sql").unlink()
    (tmp_path / "0001_again.sql").write_text("select 1;")
    with pytest.raises(LmsError, match="share version 0001"):
        discover(tmp_path)


@pytest.mark.parametrize("call", [migrate, status])
def test_unreachable_server_is_one_clear_line(call: object) -> None:
    dsn = "postgresql://lms:secret@127.0.0.1:1/lms_oltp"
    with pytest.raises(LmsError) as caught:
        call(dsn)  # type: ignore[operator]
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "lms services up postgres" in message
    assert "secret" not in message
    assert "\n" not in message
