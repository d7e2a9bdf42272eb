"""When a failed task is worth retrying: connection trouble is; bad data is not (a failed
expectation or too little data fails the same way every time, so it stops the flow at once)."""

from __future__ import annotations

from typing import Any

from lms.errors import LmsError


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except LmsError:
        return False
    except Exception:  # anything else (network, a database restart) may pass next time
        return True
    return False
