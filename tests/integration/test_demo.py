"""The README's demo command must keep working: run it as a user would."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_demo_runs_the_cleanup_end_to_end(regctl_binary: str, registry_binary_2_8: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "devkit.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "demo: ok" in completed.stdout
    assert "deleted: " in completed.stdout
    assert "skipped: " in completed.stdout
