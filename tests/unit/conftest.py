"""Unit tests see the platform's defaults, whatever LMS_* variables the shell has set (a developer's
.env, or CI running beside another copy on other ports)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("LMS_"):
            monkeypatch.delenv(name)
    from lms.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
