"""``registry-cleanup`` run in this process, for CLI behaviour that needs no registry.

The same entry point as the installed command (cli.main: argv, the one-line errors, the exit
codes), inside click's CliRunner isolation: the environment is exactly the one given, stdin is
the text given, stdout and stderr are captured. About a thousandth of a process start; used
where a case must end before any request, which a listening proxy then proves.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping

from click.testing import CliRunner

from registry_cleanup.cli import main
from tests.conftest import CliResult

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_in_process(*args: str, env: Mapping[str, str], stdin: str | None = None) -> CliResult:
    """Run the command with ``args``, the environment ``env`` and no other variable."""
    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides |= dict(env)
    handlers = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    argv = sys.argv
    code: int
    with CliRunner().isolation(input=stdin or "", env=overrides) as (stdout, stderr, _):
        sys.argv = ["registry-cleanup", *args]
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
        finally:
            sys.argv = argv
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            sys.stdout.flush()
            sys.stderr.flush()
        return CliResult(code, stdout.getvalue().decode(), stderr.getvalue().decode())
