"""Watches /proc for running copies of one binary and keeps what their argv and environment were."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Sample:
    pid: int
    cmdline: tuple[str, ...]
    environ: tuple[str, ...]  # NAME=value entries


class ProcSampler:
    """Every ``interval`` seconds, in a thread, records each process running ``binary`` that
    descends from this one.

    Only descendants: other pytest workers (xdist) and other checkouts on the machine run the
    same binary at the same time, and a sample of theirs would satisfy "a regctl process was
    seen" without the command under test ever having run one.
    """

    def __init__(self, binary: str, interval: float = 0.005) -> None:
        self._binary = os.path.realpath(binary)
        self._interval = interval
        self._stop = threading.Event()
        self._samples: dict[int, Sample] = {}
        self._ancestor = os.getpid()
        self._thread = threading.Thread(target=self._watch, name="proc-sampler", daemon=True)

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def samples(self) -> list[Sample]:
        return list(self._samples.values())

    def running(self, environ_prefix: str) -> list[int]:
        """Processes of the binary alive right now with an environment entry starting so.

        Other checkouts on the machine (a benchmark, another worktree's tests) run the same
        binary: only the entry the command under test gave its regctl tells ours apart.
        """
        return [
            pid for pid in _pids() if _exe(pid) == self._binary and _has_entry(pid, environ_prefix)
        ]

    def _watch(self) -> None:
        # Processes that do not descend from this one, looked at once: none of them can become
        # a descendant, and reading every process's exe at every poll kept a CPU half busy. A
        # pid leaves the set when its process is gone; reused within one poll, it cannot be.
        foreign: set[int] = set()
        while not self._stop.wait(self._interval):
            running = set(_pids())
            foreign &= running
            for pid in running - foreign:
                if pid in self._samples:
                    continue
                if not _descends_from(pid, self._ancestor):
                    foreign.add(pid)
                    continue
                if _exe(pid) != self._binary:
                    continue  # not yet, perhaps: a forked child execs the binary later
                try:
                    cmdline = _split(f"/proc/{pid}/cmdline")
                    environ = _split(f"/proc/{pid}/environ")
                except OSError:
                    continue  # it ended between the two reads
                if cmdline:
                    self._samples[pid] = Sample(pid, cmdline, environ)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _parent(pid: int) -> int | None:
    """The parent's pid from /proc/PID/stat; the command name before it may hold spaces and
    parentheses, so the fields are read after its last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return None  # it ended meanwhile
    return int(stat.rsplit(b")", 1)[1].split()[1])


def _descends_from(pid: int, ancestor: int) -> bool:
    seen: int | None = pid
    while seen is not None and seen > 1:
        if seen == ancestor:
            return True
        seen = _parent(seen)
    return False


def _has_entry(pid: int, prefix: str) -> bool:
    try:
        return any(entry.startswith(prefix) for entry in _split(f"/proc/{pid}/environ"))
    except OSError:
        return False  # it ended meanwhile


def _split(path: str) -> tuple[str, ...]:
    with open(path, "rb") as stream:
        raw = stream.read()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)
