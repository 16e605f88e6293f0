"""The installed ``registry-cleanup`` started warm: each run a process forked from one that has
already imported the command.

A start of the command spends about half a CPU-second importing typer, python-gitlab and
requests before it reads its first option, and the suite starts it some 600 times on two CPUs:
a quarter of the suite's CPU. warm_server.py, run by the command's own interpreter, imports
the package once per test worker and forks a child for each run. The child is a real process
of the installed entry point: its own argv, environment, directory, standard streams, threads,
regctl children and exit status; only the imports happened before it existed.

A fresh start would differ where something is read before the entry point runs: by the
interpreter (PYTHON*, LANG, LC_*) or by a module as it is imported (the server notes every
variable its imports read). A run whose environment differs from the server's in any of these
gets None from ``run``, and its caller starts the command fresh. So do the tests of start-up
itself (the image's, the packages', --help timing in bench/), which never come here, and every
run when REGISTRY_CLEANUP_TEST_FRESH is set.
"""

from __future__ import annotations

import io
import json
import locale
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

SERVER = Path(__file__).with_name("warm_server.py")
# Read by the interpreter as it starts, before any import.
READ_AT_START = ("PYTHON", "LANG", "LC_")
FRESH_ENV = "REGISTRY_CLEANUP_TEST_FRESH"


class WarmCommand:
    """One warm server for ``command`` (a console script), started with ``env``."""

    def __init__(self, command: str, env: Mapping[str, str], directory: Path) -> None:
        self.command = command
        self.env = dict(env)
        self._socket = directory / "socket"
        self._ready = directory / "ready.json"
        self._log = directory / "server.log"
        self._server: subprocess.Popen[bytes] | None = None
        self.read_on_import: frozenset[str] = frozenset()

    def __enter__(self) -> WarmCommand:
        with self._log.open("wb") as log:
            self._server = subprocess.Popen(
                [
                    _interpreter(self.command),
                    str(SERVER),
                    self.command,
                    str(self._socket),
                    str(self._ready),
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while not self._ready.exists():
            if self._server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the warm server did not start:\n{self._log.read_text()}")
            time.sleep(0.02)
        self.read_on_import = frozenset(json.loads(self._ready.read_text())["read"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait()

    def starts_as_fresh(self, env: Mapping[str, str]) -> bool:
        """True when a child forked for ``env`` is what a fresh process with ``env`` would be."""
        if os.environ.get(FRESH_ENV):
            return False
        names = set(self.read_on_import)
        names |= {name for name in (*env, *self.env) if name.startswith(READ_AT_START)}
        return all(env.get(name) == self.env.get(name) for name in names)

    def run(
        self, argv: Sequence[str], env: Mapping[str, str], stdin: str | None, timeout: float
    ) -> tuple[int, str, str] | None:
        """Run ``argv`` (argv[0] the command) as subprocess.run(text=True) would; None when
        this run must start fresh instead."""
        if not self.starts_as_fresh(env):
            return None
        encoding = locale.getpreferredencoding(False)
        with (
            tempfile.TemporaryFile() as given,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
            socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection,
        ):
            if stdin is not None:
                given.write(stdin.encode(encoding))
                given.seek(0)
            # No input: the child inherits this process's stdin, as subprocess.run's would.
            streams = [given.fileno() if stdin is not None else 0, stdout.fileno(), stderr.fileno()]
            request = {"argv": list(argv), "env": dict(env), "cwd": os.getcwd()}
            connection.connect(str(self._socket))
            socket.send_fds(connection, [json.dumps(request).encode()], streams)
            connection.settimeout(timeout)
            try:
                reply = connection.recv(64)
            except TimeoutError:
                # Closing the connection makes the server kill the child.
                raise subprocess.TimeoutExpired(list(argv), timeout) from None
            if not reply:
                raise RuntimeError(f"the warm server stopped:\n{self._log.read_text()}")
            return int(reply), _text(stdout, encoding), _text(stderr, encoding)


def _text(written: IO[bytes], encoding: str) -> str:
    """What subprocess.run(text=True) gives: decoded, with universal newlines."""
    written.seek(0)
    return io.TextIOWrapper(written, encoding=encoding).read()


def _interpreter(command: str) -> str:
    """The interpreter of a console script (its #! line)."""
    with open(command, "rb") as script:
        first = script.readline().decode().strip()
    if not first.startswith("#!"):
        raise RuntimeError(f"{command} is not a script with a #! line")
    return first.removeprefix("#!").split()[0]
