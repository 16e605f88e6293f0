"""A regctl that reports on itself: a wrapper put on REGISTRY_CLEANUP_REGCTL in secrecy tests.

For every call it appends one JSON line to a log — its argv, its environment, and the modes of
the private REGCTL_CONFIG file and directory as they are at that moment — and then runs the real
regctl. Options make it add ``--verbosity trace`` (so our -v relays regctl's most talkative
output) or echo what it read on stdin to stderr first (a regctl that leaks what it was given).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """#!{python}
import json, os, stat, subprocess, sys

real, log = {real!r}, {log!r}
config = os.environ.get("REGCTL_CONFIG", "")
def mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
record = {{
    "pid": os.getpid(),
    "argv": sys.argv[1:],
    "env": dict(os.environ),
    "config": config,
    "config_mode": mode(config),
    "dir_mode": mode(os.path.dirname(config)) if config else None,
}}
with open(log, "a") as stream:
    stream.write(json.dumps(record) + "\\n")
argv = [real] + (["--verbosity", "trace"] if {trace!r} else []) + sys.argv[1:]
if {echo!r}:
    given = sys.stdin.read() if not sys.stdin.isatty() else ""
    sys.stderr.write("spy: regctl was given " + repr(given) + "\\n")
    if "--user" in sys.argv:
        import base64
        user = sys.argv[sys.argv.index("--user") + 1]
        basic = base64.b64encode((user + ":" + given.strip()).encode()).decode()
        sys.stderr.write("spy: Authorization: Basic " + basic + "\\n")
    sys.exit(subprocess.run(argv, input=given, text=True).returncode)
os.execv(real, argv)
"""


@dataclass(frozen=True)
class Spy:
    path: Path
    log: Path

    def calls(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def make_spy(directory: Path, real: str, *, trace: bool = False, echo: bool = False) -> Spy:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "regctl"
    log = directory / "calls.jsonl"
    path.write_text(
        _SCRIPT.format(
            python=sys.executable, real=os.path.realpath(real), log=str(log), trace=trace, echo=echo
        )
    )
    path.chmod(0o755)
    return Spy(path, log)
