"""Session work done once per test run, however many pytest-xdist workers there are.

A session-scoped fixture runs once per process, and under ``pytest -n N`` every worker is a
process: N image builds into the same cache directory, or N copies of anything else expensive.
``once_per_run`` lets the first worker do the work under a lock and leave its JSON result in a
directory every worker of this run shares (pytest's base temporary directory's parent, which
xdist makes per run); the others wait for the lock and read the result. Without xdist it just
does the work.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every worker of this run shares (the base temporary one without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, produce: Callable[[], Any]
) -> Any:
    """``produce()``'s result (JSON-able), computed by one worker of this run only."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return produce()
    shared = run_directory(tmp_path_factory)
    result = shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        # Blocks while another worker produces it; a worker whose produce() raised leaves no
        # result, so the next one tries again and fails as loudly.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.is_file():
            return json.loads(result.read_text())
        value = produce()
        partial = result.with_suffix(".partial")
        partial.write_text(json.dumps(value))
        partial.rename(result)
        return value
