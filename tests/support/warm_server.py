"""The server side of tests/support/warm_command.py: an installed ``registry-cleanup`` whose
modules are imported once, and a fresh child process forked for every run.

Run by the command's own interpreter, as ``python warm_server.py COMMAND SOCKET READY``, with
nothing of the test suite on its path. It imports every module of the package and the console
script's entry point (what a run would import anyway, lazily), noting which environment
variables those imports read; writes READY (that list) once it listens; then, for each request
on the socket (argv, environment, directory, and the three standard streams as descriptors),
forks a child that becomes what a fresh process of COMMAND would be at the entry point, runs
it and exits as the interpreter would. The exit status goes back on the request's connection;
a connection closed before then (the caller timed out) kills the child.

Single-threaded on purpose: a process with threads must not fork.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.metadata
import json
import os
import pkgutil
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

# A request: JSON of argv, env and cwd, with stdin, stdout and stderr as descriptors.
MAX_REQUEST = 1 << 20


def import_command(package: str, script: str) -> tuple[Callable[[], Any], list[str]]:
    """Import every module of ``package`` and the console script ``script``'s entry point;
    return the entry point and the names of the variables the imports read."""
    read: set[str] = set()
    original = os._Environ.__getitem__  # type: ignore[attr-defined]

    def recording(self: Any, key: str) -> str:
        read.add(key)
        return original(self, key)  # type: ignore[no-any-return]

    os._Environ.__getitem__ = recording  # type: ignore[attr-defined]
    try:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            importlib.import_module(module.name)
        (entry,) = importlib.metadata.entry_points(group="console_scripts", name=script)
        main = entry.load()
    finally:
        os._Environ.__getitem__ = original  # type: ignore[attr-defined]
    return main, sorted(read)


def exit_code(done: SystemExit) -> int:
    """The status the interpreter exits with for an uncaught SystemExit."""
    if done.code is None:
        return 0
    if isinstance(done.code, int):
        return done.code & 0xFF
    print(done.code, file=sys.stderr)
    return 1


def become_the_command(
    request: dict[str, Any], streams: list[int], main: Callable[[], Any]
) -> None:
    """In the forked child: take the caller's streams, environment, directory and argv, run
    the entry point as the console script does (``sys.exit(main())``), and exit."""
    code = 1
    try:
        for target, descriptor in enumerate(streams):
            os.dup2(descriptor, target)
        # As subprocess's close_fds: the child keeps only its three standard streams.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = list(request["argv"])
        try:
            sys.exit(main())
        except SystemExit as done:
            code = exit_code(done)
        except BaseException:
            traceback.print_exc()
            code = 1
        # What the interpreter does on its way out: wait for non-daemon threads (and so a
        # thread pool's workers), run atexit functions, flush the streams.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve(listener: socket.socket, main: Callable[[], Any]) -> None:
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    # pidfd -> the child's pid and its caller's connection
    running: dict[int, tuple[int, socket.socket]] = {}
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                connection, _ = listener.accept()
                data, descriptors, _, _ = socket.recv_fds(connection, MAX_REQUEST, 3)
                if threading.active_count() != 1:
                    raise RuntimeError("the warm server has threads; it must not fork")
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    become_the_command(json.loads(data), descriptors, main)
                for descriptor in descriptors:
                    os.close(descriptor)
                pidfd = os.pidfd_open(pid)
                running[pidfd] = (pid, connection)
                selector.register(pidfd, selectors.EVENT_READ, "exited")
                selector.register(connection, selectors.EVENT_READ, ("caller", pid))
            elif key.data == "exited":
                pid, connection = running.pop(key.fd)
                selector.unregister(key.fd)
                if connection.fileno() in selector.get_map():
                    selector.unregister(connection)
                _, status = os.waitpid(pid, 0)
                os.close(key.fd)
                with contextlib.suppress(OSError):  # the caller may have gone
                    connection.send(str(os.waitstatus_to_exitcode(status)).encode())
                connection.close()
            else:
                # The caller hung up (it timed out) before its run ended.
                _, pid = key.data
                selector.unregister(key.fileobj)
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    command, socket_path, ready = sys.argv[1:4]
    # As a console script's process: its own directory first on the path, its name as argv[0].
    sys.path[0] = os.path.dirname(command)
    entry, read = import_command("registry_cleanup", os.path.basename(command))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(socket_path)
    listener.listen(16)
    with open(ready + ".tmp", "w") as written:
        json.dump({"read": read}, written)
    os.replace(ready + ".tmp", ready)
    serve(listener, entry)


if __name__ == "__main__":
    main()
