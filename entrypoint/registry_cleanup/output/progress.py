"""Progress of a long run: a rich progress bar at a terminal, periodic lines in CI logs.

rich.progress is imported only when a bar is shown, so CI runs and ``--help`` never load it.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import TaskID

    from registry_cleanup.engine.progress import Progress

LOG_INTERVAL_SECONDS = 10.0


class LogProgress:
    """One line every ``interval`` seconds and one at the end: readable in a CI job log."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._label = ""
        self._last = 0.0

    def start(self, total: int, label: str) -> None:
        self._total, self._label, self._last = total, label, self._clock()
        self._counts.clear()
        self._line()

    def advance(self, status: str) -> None:
        self._counts[status] += 1
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._line()

    def close(self) -> None:
        if self._total:
            self._line()

    def _line(self) -> None:
        done = sum(self._counts.values())
        counts = ", ".join(f"{status} {n}" for status, n in sorted(self._counts.items()))
        suffix = f" ({counts})" if counts else ""
        print(f"{self._label}: {done}/{self._total}{suffix}", file=self._stream, flush=True)


class BarProgress:
    """A rich progress bar on standard error."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(console=Console(stderr=True))
        self._task: TaskID | None = None

    def start(self, total: int, label: str) -> None:
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, status: str) -> None:
        if self._task is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        self._bar.stop()


def progress_for(stream: TextIO = sys.stderr, *, in_ci: bool) -> Progress:
    """A bar for a person at a terminal, lines for a CI log (or a pipe)."""
    if stream.isatty() and not in_ci:
        return BarProgress()
    return LogProgress(stream)
