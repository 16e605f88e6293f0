"""The ``registry-cleanup`` application: the command groups, the version, signals and exit codes.

Each command group lives in its own module beside this one, with its help, examples and options;
this module only puts them together. No logic. ``delete`` starts with its own module only: it
runs in every stop job, where the start-up is most of its time.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from registry_cleanup import __version__
from registry_cleanup.errors import EXIT_INPUT_ERROR, CleanupError, InputError
from registry_cleanup.output.shown import PROG, stderr_line

# Commands whose module alone is imported when they are the one asked for (python -X importtime:
# the other command modules cost about 40-60 ms of each `delete`).
STARTS_ALONE = frozenset({"delete"})


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


def root(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Delete a branch's container image when the branch goes away, and nothing else."""
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())


def build_app(only: str | None = None) -> typer.Typer:
    """Every command, or only ``only`` (one of STARTS_ALONE): the same command, help and
    options either way, under the same root."""
    app = typer.Typer(
        name=PROG,
        help="Delete a branch's container image when the branch goes away, and nothing else.",
        add_completion=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    app.callback(invoke_without_command=True)(root)
    from registry_cleanup.cli import delete

    app.command(epilog=delete.EPILOG)(delete.delete)
    if only in STARTS_ALONE:
        return app
    from registry_cleanup.cli import gitlab_admin, group, restore, sweep

    app.command(epilog=sweep.EPILOG)(sweep.sweep)
    app.command(epilog=restore.EPILOG)(restore.restore)
    app.command("group-pipeline", epilog=group.PIPELINE_EPILOG)(group.group_pipeline)
    app.command("merge-reports")(group.merge_reports)
    app.command("bulk-delete")(gitlab_admin.bulk_delete)
    app.command("delete-repository")(gitlab_admin.delete_repository)
    app.add_typer(gitlab_admin.policy_app, name="policy")
    return app


# Ctrl-C at a terminal; GitLab cancelling a job or timing it out.
_STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Our own handler for SIGINT too: typer turns KeyboardInterrupt into a silent exit 130.
    # One line says why the run stopped; SystemExit unwinds the 'with' blocks, so a tag on
    # regctl's placeholder is restored and the private regctl config is removed.
    stderr_line(_STOP_SIGNALS[signal.Signals(signum)])
    raise SystemExit(128 + signum)


def main() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    arguments = sys.argv[1:]
    app = build_app(arguments[0] if arguments else None)
    try:
        # Without standalone mode typer returns typer.Exit's code instead of exiting.
        result = app(standalone_mode=False)
    except InputError as error:
        stderr_line(f"error: {error}")
        sys.exit(error.exit_code)
    except CleanupError as error:
        stderr_line(str(error))
        sys.exit(error.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        stderr_line("aborted")
        sys.exit(130)
    except Exception as error:
        # Usage errors from the option parser: one line, exit 2, like our own input errors.
        if hasattr(error, "format_message") and getattr(error, "exit_code", None) == 2:
            stderr_line(f"error: {error.format_message()} (see {PROG} --help)")
            sys.exit(EXIT_INPUT_ERROR)
        raise
    sys.exit(result if isinstance(result, int) else 0)
