"""``registry-cleanup delete``: one tag, through the registry (regctl) or GitLab's API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from registry_cleanup import api_commands
from registry_cleanup.api_commands import ApiSettings
from registry_cleanup.ci import CiContext
from registry_cleanup.cli.options import (
    ApiUrlOption,
    ProjectOption,
    ProtectOption,
    ProtectSemverOption,
    TlsOption,
    Via,
    ViaOption,
    stderr_line,
)
from registry_cleanup.deletion import DeleteRequest, delete_tag, explain_failure, parse_digest
from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.refs import REGISTRY_PATTERN, ImageRef
from registry_cleanup.regctl import (
    DEFAULT_TIMEOUT_SECONDS,
    HostSettings,
    RegctlError,
    RegctlSession,
    TlsMode,
    check_ca_file,
    tls_notice,
)
from registry_cleanup.report import Outcome, Status
from registry_cleanup.safety import ProtectionRules

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
    registry: Annotated[
        str | None,
        typer.Option(
            envvar="CI_REGISTRY",
            metavar="HOST",
            help="Registry host the credentials are for.",
            show_default=False,
        ),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option(
            envvar="CI_REGISTRY_USER",
            metavar="USER",
            help="Registry user name.",
            show_default=False,
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the registry password from standard input (default: $CI_REGISTRY_PASSWORD).",
        ),
    ] = False,
    tls: TlsOption = TlsMode.enabled,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_CA_FILE",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="PEM file with the CA that signed the registry's certificate.",
        ),
    ] = None,
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
    docker_config: Annotated[
        bool,
        typer.Option(
            "--docker-config", help="Also use credentials and certificates from the Docker config."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            envvar="REGISTRY_CLEANUP_TIMEOUT",
            metavar="SECONDS",
            min=1.0,
            max=3600.0,
            help="Give up on one regctl call after SECONDS (regctl retries 429/5xx within it).",
        ),
    ] = DEFAULT_TIMEOUT_SECONDS,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a line.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show regctl's own messages.")
    ] = False,
    via: ViaOption = Via.registry,
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
) -> None:
    """Delete one tag: by default the current branch's image, never a protected tag."""
    ci = CiContext.from_env({**os.environ, "CI_DEFAULT_BRANCH": default_branch or ""})
    target = ci.target_ref(ref)
    login_host = _login_host(registry, target)
    password = _read_password(password_stdin, username)
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
            api_commands.run_delete_via_api(ApiSettings(api_url, project), request, json_output)
        )
    log = stderr_line if verbose else None
    emit = _Emitter(json_output, target)
    notice = tls_notice(target.registry, tls)
    if notice is not None:
        stderr_line(notice)
    try:
        with RegctlSession(use_docker_config=docker_config, log=log, timeout=timeout) as session:
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


def _login_host(registry: str | None, target: ImageRef) -> str:
    """The host to log in to: --registry / $CI_REGISTRY, which must be the image's host."""
    if registry is None:
        return target.registry
    if REGISTRY_PATTERN.fullmatch(registry) is None:
        raise InputError(
            f"registry {registry!r} is not a host name; write host or host:port, no scheme or path"
        )
    if registry != target.registry:
        raise InputError(
            f"the credentials are for registry {registry} but {target} is on "
            f"{target.registry}; pass --registry {target.registry}"
        )
    return registry


def _read_password(from_stdin: bool, username: str | None) -> str | None:
    if from_stdin:
        if not username:
            raise InputError("--password-stdin needs --username (or CI_REGISTRY_USER)")
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin read an empty password")
        return password
    password = os.environ.get("CI_REGISTRY_PASSWORD") or None
    if password and not username:
        raise InputError("CI_REGISTRY_PASSWORD is set but CI_REGISTRY_USER is not")
    return password


class _Emitter:
    """Prints one outcome the way the user asked, then ends the process with its exit code."""

    def __init__(self, json_output: bool, target: ImageRef) -> None:
        self._json = json_output
        self._target = target

    def outcome(self, outcome: Outcome) -> NoReturn:
        if self._json:
            typer.echo(outcome.as_json())
        elif not outcome.status.is_failure:
            typer.echo(outcome.as_line())
        if outcome.status.is_failure:
            stderr_line(outcome.reason)
            raise typer.Exit(1)
        raise typer.Exit(0)

    def failure(self, message: str) -> NoReturn:
        if self._json:
            failed = Outcome(
                ref=str(self._target),
                tag=self._target.tag,
                digest=None,
                status=Status.failed,
                reason=message,
            )
            typer.echo(failed.as_json())
        stderr_line(message)
        raise typer.Exit(1)
