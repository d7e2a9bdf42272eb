"""Settings defaults that the whole platform relies on."""

from __future__ import annotations

import pytest

from ingestion.collector.settings import CollectorSettings
from lms.settings import Settings


def _default_ports() -> dict[str, int]:
    fields = {**Settings.model_fields, **CollectorSettings.model_fields}
    return {name: f.default for name, f in fields.items() if name.endswith("_port")}


def test_every_default_port_is_below_the_ephemeral_range() -> None:
    # Linux hands out 32768-60999 to outgoing connections; a service default inside it can lose
    # its port to any client socket opened a moment before the service binds.
    ports = _default_ports()
    assert len(ports) >= 9
    assert {name: p for name, p in ports.items() if p >= 32768} == {}
    assert len(set(ports.values())) == len(ports), "two services share a default port"


def test_placeholder_secrets_are_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMS_ENV", "production")
    with pytest.raises(ValueError, match="LMS_"):
        Settings()
