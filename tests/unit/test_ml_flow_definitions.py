"""Every deployment in flows/prefect.yaml points at a flow that loads, under its own name."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from lms.settings import REPO_ROOT


def test_every_deployment_entrypoint_is_a_prefect_flow() -> None:
    from prefect import Flow

    spec = yaml.safe_load((REPO_ROOT / "flows" / "prefect.yaml").read_text())
    names = set()
    for deployment in spec["deployments"]:
        path, attr = deployment["entrypoint"].split(":")
        module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
        flow = getattr(module, attr)
        assert isinstance(flow, Flow), deployment["entrypoint"]
        names.add(flow.name)
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
    assert names == {"pipeline", "train", "score"}


def test_cli_mistakes_are_one_clear_line() -> None:
    import subprocess
    import sys

    lms = Path(sys.executable).with_name("lms")
    proc = subprocess.run(
        [str(lms), "flow", "train", "--models", "dropout,nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown model(s) nope; choose from dropout, final_score, topic_mastery, "
        "next_chapter, quiz_difficulty"
    ]
