"""``registry-cleanup restore``: point deleted tags back at the digests a report recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from registry_cleanup.cli import connect
from registry_cleanup.cli.options import (
    CaFileOption,
    DockerConfigOption,
    JsonOption,
    PasswordStdinOption,
    RegistryOption,
    TimeoutOption,
    TlsOption,
    UsernameOption,
    VerboseOption,
    check_login_host,
    read_password,
)
from registry_cleanup.engine.deletion import explain_failure
from registry_cleanup.engine.restore import (
    RestoreOutcome,
    RestoreStatus,
    read_report,
    restore_one,
    select,
    summary,
)
from registry_cleanup.errors import EXIT_FAILURE, EXIT_OK, InputError
from registry_cleanup.output.report import restore_document
from registry_cleanup.output.shown import stderr_line
from registry_cleanup.registry.hosts import TlsMode, check_ca_file
from registry_cleanup.registry.regctl import DEFAULT_TIMEOUT_SECONDS, RegctlError

EPILOG = """\
Examples:

\b
  # Undo a sweep, from the report its job kept as an artifact
  registry-cleanup restore --report registry-cleanup-sweep.json
\b
  # Undo one wrong stop job: only this tag, and first see what would happen
  registry-cleanup restore --report registry-cleanup-delete.json --tag my-branch --dry-run
\b
  # At a terminal, against a plain-HTTP registry
  echo "$PASSWORD" | registry-cleanup restore --report sweep.json \\
      --username me --password-stdin --tls disabled

A tag that exists again is left alone; an image the registry's garbage collection removed
cannot come back (rebuild and push it). Running restore twice is safe.

Exit codes: 0 every tag restored (or already); 1 something could not be restored; 2 bad input.
"""


def restore(
    report: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="A sweep report, a 'delete --report' file, or the output of 'delete --json'.",
            show_default=False,
        ),
    ],
    tag: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TAG",
            help="Restore only this tag (repeatable; default: every deleted tag in the report).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            envvar="REGISTRY_CLEANUP_DRY_RUN",
            help="Say what would be restored; change nothing.",
        ),
    ] = False,
    registry: RegistryOption = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    tls: TlsOption = TlsMode.enabled,
    ca_file: CaFileOption = None,
    docker_config: DockerConfigOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Undo deletions: point each deleted tag back at its recorded digest, if the image is there."""
    wanted = select(read_report(report), tag or ())
    hosts = sorted({item.ref.registry for item in wanted})
    if len(hosts) > 1:
        raise InputError(
            f"report {report} names tags on several registries ({', '.join(hosts)}); "
            "restore one registry at a time with --tag"
        )
    password = read_password(password_stdin, username)
    login_host = check_login_host(registry, hosts[0], what=f"report {report}") if hosts else None
    if ca_file is not None:
        check_ca_file(ca_file)
    outcomes: list[RestoreOutcome] = []
    if wanted:
        registry_options = connect.RegistryOptions(
            login_host, username, password, tls, ca_file, docker_config, timeout, verbose
        )
        with registry_options.session(hosts[0]) as session:
            for item in wanted:
                try:
                    outcome = restore_one(item, session, dry_run=dry_run)
                except RegctlError as error:
                    outcome = RestoreOutcome(
                        str(item.ref),
                        item.ref.tag,
                        item.digest,
                        RestoreStatus.failed,
                        explain_failure(error),
                    )
                outcomes.append(outcome)
                if not json_output:
                    typer.echo(outcome.as_line())
    if json_output:
        typer.echo(json.dumps(restore_document(outcomes, dry_run=dry_run), indent=2))
    counts = ", ".join(f"{key} {value}" for key, value in summary(outcomes).items() if value)
    stderr_line(f"restore from {report}: {counts or 'the report records no deleted tag'}")
    failed = any(outcome.status.is_failure for outcome in outcomes)
    raise typer.Exit(EXIT_FAILURE if failed else EXIT_OK)
