"""Checks on where a simulation writes, cheap enough to run before the heavy imports."""

from __future__ import annotations

from pathlib import Path

from lms.errors import UsageError


def ensure_writable(directory: Path) -> None:
    """Create ``directory`` and prove it takes files, or fail with one line naming ``--out``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write to --out {directory}: {exc.strerror or exc}; choose a writable directory"
        ) from None
