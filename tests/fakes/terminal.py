"""Run the CLI at a pseudo-terminal, as a person would: for prompts and progress bars."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from collections.abc import Mapping


def run_in_terminal(
    *args: str, env: Mapping[str, str], answer: str | None = None
) -> tuple[int, str]:
    """Exit code and everything the terminal showed; ``answer`` is typed at the prompt."""
    command = shutil.which("registry-cleanup")
    if command is None:
        raise RuntimeError("registry-cleanup is not installed; run ./dev setup")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [command, *args], stdin=follower, stdout=follower, stderr=follower, env=dict(env)
    )
    os.close(follower)
    if answer is not None:
        os.write(leader, answer.encode())
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")
