"""``registry-cleanup delete``: one tag, through the registry (regctl) or GitLab's API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from registry_cleanup import api_commands
from registry_cleanup.api_commands import ApiSettings
from registry_cleanup.cli.options import (
    ApiUrlOption,
    CaFileOption,
    DockerConfigOption,
    PasswordStdinOption,
    ProjectOption,
    ProtectOption,
    ProtectSemverOption,
    RegistryOption,
    TimeoutOption,
    TlsOption,
    UsernameOption,
    VerboseOption,
    Via,
    ViaOption,
    check_login_host,
    read_password,
    stderr_line,
)
from registry_cleanup.domain.ci import CiContext
from registry_cleanup.domain.refs import ImageRef
from registry_cleanup.domain.safety import ProtectionRules
from registry_cleanup.engine.deletion import (
    DeleteRequest,
    delete_tag,
    explain_failure,
    parse_digest,
)
from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.output.report import Outcome, Status, delete_document, write_document
from registry_cleanup.registry.regctl import (
    DEFAULT_TIMEOUT_SECONDS,
    HostSettings,
    RegctlError,
    RegctlSession,
    TlsMode,
    check_ca_file,
    tls_notice,
)

EPILOG = """\
Examples:

\b
  # In a GitLab CI job: delete $CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG
  registry-cleanup delete
\b
  # Only if the tag still points at the image this branch built
  registry-cleanup delete --expect-digest "$IMAGE_DIGEST"
\b
  # At a terminal, against a plain-HTTP registry, showing what would happen
  echo "$PASSWORD" | registry-cleanup delete localhost:5000/app:my-branch \\
      --username me --password-stdin --tls disabled --dry-run

Exit codes: 0 deleted, absent or skipped; 1 failed; 2 bad input (nothing was attempted).
"""


def delete(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="REF",
            help="registry/repository:tag to delete. "
            "Default: $CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG.",
            show_default=False,
        ),
    ] = None,
    registry: RegistryOption = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    tls: TlsOption = TlsMode.enabled,
    ca_file: CaFileOption = None,
    protect: ProtectOption = None,
    protect_semver: ProtectSemverOption = True,
    default_branch: Annotated[
        str | None,
        typer.Option(
            envvar="CI_DEFAULT_BRANCH",
            metavar="BRANCH",
            help="The default branch; its image is never deleted.",
            show_default=False,
        ),
    ] = None,
    expect_digest: Annotated[
        str | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_EXPECT_DIGEST",
            metavar="sha256:...",
            help="Delete only if the tag still points at this digest.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            envvar="REGISTRY_CLEANUP_DRY_RUN",
            help="Say what would happen; change nothing.",
        ),
    ] = False,
    docker_config: DockerConfigOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT_SECONDS,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a line.")
    ] = False,
    verbose: VerboseOption = False,
    via: ViaOption = Via.registry,
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="Also write a JSON report (tag, digest, registry, time) to FILE, "
            "for a CI artifact; `registry-cleanup restore --report FILE` undoes the delete.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete one tag: by default the current branch's image, never a protected tag."""
    ci = CiContext.from_env({**os.environ, "CI_DEFAULT_BRANCH": default_branch or ""})
    target = ci.target_ref(ref)
    login_host = check_login_host(registry, target.registry, what=str(target))
    password = read_password(password_stdin, username)
    if ca_file is not None:
        check_ca_file(ca_file)
    request = DeleteRequest(
        target=target,
        rules=ProtectionRules.build(
            default_branch_tag=ci.default_branch_slug(),
            patterns=protect or (),
            protect_semver=protect_semver,
        ),
        expect_digest=parse_digest(expect_digest) if expect_digest else None,
        dry_run=dry_run,
        default_branch_pipeline=ci.default_branch if ci.is_default_branch_pipeline() else None,
    )
    if via is Via.api:
        raise typer.Exit(
            api_commands.run_delete_via_api(
                ApiSettings(api_url, project),
                request,
                json_output,
                report=report,
                # For a tag GitLab cannot read (an image index without its metadata database).
                reads=api_commands.RegistryLogin.from_env(tls),
            )
        )
    log = stderr_line if verbose else None
    emit = _Emitter(json_output, target, report=report, dry_run=dry_run)
    notice = tls_notice(target.registry, tls)
    if notice is not None:
        stderr_line(notice)
    try:
        with RegctlSession(
            use_docker_config=docker_config, log=log, timeout=timeout, notice=stderr_line
        ) as session:
            session.configure_host(target.registry, HostSettings(tls=tls, ca_file=ca_file))
            if username and password and login_host:
                session.login(login_host, username, password)
            outcome = delete_tag(request, session)
    except RegctlError as error:
        emit.failure(explain_failure(error))
    except InputError:
        raise  # exit 2 in main(), like every other input error
    except CleanupError as error:
        emit.failure(str(error))
    emit.outcome(outcome)


class _Emitter:
    """Prints one outcome the way the user asked, then ends the process with its exit code."""

    def __init__(
        self, json_output: bool, target: ImageRef, *, report: Path | None, dry_run: bool
    ) -> None:
        self._json = json_output
        self._target = target
        self._report = report
        self._dry_run = dry_run

    def outcome(self, outcome: Outcome) -> NoReturn:
        self._write_report(outcome)
        if self._json:
            typer.echo(outcome.as_json())
        elif not outcome.status.is_failure:
            typer.echo(outcome.as_line())
        if outcome.status.is_failure:
            stderr_line(outcome.reason)
            raise typer.Exit(1)
        raise typer.Exit(0)

    def _write_report(self, outcome: Outcome) -> None:
        # Written before anything is printed, so a failed job still leaves its artifact.
        if self._report is not None:
            document = delete_document(outcome, self._target, dry_run=self._dry_run)
            write_document(self._report, document)

    def failure(self, message: str) -> NoReturn:
        failed = Outcome(
            ref=str(self._target),
            tag=self._target.tag,
            digest=None,
            status=Status.failed,
            reason=message,
        )
        self._write_report(failed)
        if self._json:
            typer.echo(failed.as_json())
        stderr_line(message)
        raise typer.Exit(1)
