"""How the engine reports progress: a port the output layer fills (output/progress.py)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, label: str) -> None: ...
    def advance(self, status: str) -> None: ...
    def close(self) -> None: ...


class SilentProgress:
    """No progress shown: the per-project sweeps of a group report through the group's one
    bar, not their own."""

    def start(self, total: int, label: str) -> None:
        return

    def advance(self, status: str) -> None:
        return

    def close(self) -> None:
        return
