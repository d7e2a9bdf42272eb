"""Headless Chromium for checking the HTML report the way a person would see it.

Debian's `chromium` package, installed with apt-get when missing (idempotent, like the other
system packages the platform needs), then run headless with no network access needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lms.errors import LmsError
from lms.services.base import Reporter, apt_install

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def ensure_chromium(report: Reporter = lambda line: None) -> str:
    """The path of a Chromium binary, installing Debian's package when there is none."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    apt_install(["chromium"], report, "headless Chromium renders the warehouse report")
    found = shutil.which("chromium")
    if not found:
        raise LmsError("chromium is still missing after apt-get install chromium")
    return found


def _base_args(binary: str, profile: str) -> list[str]:
    args = [
        binary,
        "--headless=new",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]
    if os.geteuid() == 0:  # Chromium refuses to run as root inside its sandbox
        args.append("--no-sandbox")
    return args


def dump_dom(page: Path, *, timeout_s: float = 120) -> str:
    """The page's DOM after its scripts ran (what the browser rendered, as HTML)."""
    binary = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="lms-chromium-") as profile:
        result = subprocess.run(
            [
                *_base_args(binary, profile),
                "--virtual-time-budget=5000",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if result.returncode != 0 or not result.stdout.strip():
        tail = (result.stderr or "").strip().splitlines()[-3:]
        raise LmsError(f"chromium could not render {page}: {' | '.join(tail)}")
    return result.stdout


def screenshot(
    page: Path, out: Path, *, width: int = 1200, height: int = 3000, timeout_s: float = 120
) -> Path:
    """A PNG of the rendered page."""
    binary = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="lms-chromium-") as profile:
        result = subprocess.run(
            [
                *_base_args(binary, profile),
                f"--window-size={width},{height}",
                f"--screenshot={out}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if result.returncode != 0 or not out.exists():
        tail = (result.stderr or "").strip().splitlines()[-3:]
        raise LmsError(f"chromium could not screenshot {page}: {' | '.join(tail)}")
    return out
