"""The ``registry-cleanup`` command: options, environment bindings and exit codes. No logic."""

from __future__ import annotations

import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from registry_cleanup import __version__, api_commands
from registry_cleanup.api_commands import ApiSettings
from registry_cleanup.ci import CiContext
from registry_cleanup.deletion import DeleteRequest, delete_tag, explain_failure, parse_digest
from registry_cleanup.errors import EXIT_INPUT_ERROR, CleanupError, InputError
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

PROG = "registry-cleanup"

app = typer.Typer(
    name=PROG,
    help="Delete a branch's container image when the branch goes away, and nothing else.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class Via(StrEnum):
    registry = "registry"
    api = "api"


ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="CI_API_V4_URL",
        metavar="URL",
        help="GitLab API URL ending in /api/v4 (default: $CI_API_V4_URL).",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        envvar="CI_PROJECT_ID",
        metavar="ID|PATH",
        help="Project ID or path, e.g. 42 or group/app (default: $CI_PROJECT_ID).",
        show_default=False,
    ),
]
RepositoryOption = Annotated[
    str | None,
    typer.Option(
        "--repository",
        metavar="PATH",
        help="Container repository path, location or ID (default: the only one).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TlsOption = Annotated[
    TlsMode,
    typer.Option(
        envvar="REGISTRY_CLEANUP_TLS",
        case_sensitive=False,
        help="TLS to the registry: enabled, insecure (no verification) or disabled (plain HTTP).",
    ),
]
ProtectOption = Annotated[
    list[str] | None,
    typer.Option(
        envvar="REGISTRY_CLEANUP_PROTECT",
        metavar="REGEX",
        help="Never delete tags matching REGEX (RE2, whole tag). Repeatable; "
        "the environment variable takes space-separated patterns.",
        show_default=False,
    ),
]
ProtectSemverOption = Annotated[
    bool,
    typer.Option(
        "--protect-semver/--no-protect-semver",
        help="Protect release tags such as v1.2.3 and 1.2.",
    ),
]
ViaOption = Annotated[
    Via,
    typer.Option(
        envvar="REGISTRY_CLEANUP_VIA",
        case_sensitive=False,
        help="registry: regctl and the registry API, logged in once with CI_REGISTRY_USER / "
        "CI_REGISTRY_PASSWORD. api: GitLab's REST tag endpoint (GITLAB_TOKEN or CI_JOB_TOKEN).",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
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


DELETE_EPILOG = """\
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


@app.command(epilog=DELETE_EPILOG)
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
    log = _stderr_line if verbose else None
    emit = _Emitter(json_output, target)
    notice = tls_notice(target.registry, tls)
    if notice is not None:
        _stderr_line(notice)
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
            _stderr_line(outcome.reason)
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
        _stderr_line(message)
        raise typer.Exit(1)


def _stderr_line(message: str) -> None:
    typer.echo(f"{PROG}: {message}", err=True)


SWEEP_EPILOG = """\
Examples:

\b
  # In a scheduled pipeline: show what would go (the default is a dry run)
  registry-cleanup sweep
\b
  # Delete orphaned review-* tags older than two weeks, keeping the 5 newest
  registry-cleanup sweep --include 'review-.*' --older-than 14d --keep-n 5 --delete
\b
  # At a terminal, against one repository of another project
  GITLAB_TOKEN=... registry-cleanup sweep --api-url https://gitlab.example.com/api/v4 \\
      --project group/app --repository group/app/worker --json

Exit codes: 0 done; 1 a deletion failed or the guard refused; 2 bad input.
"""


@app.command(epilog=SWEEP_EPILOG)
def sweep(
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
    repository: Annotated[
        list[str] | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_REPOSITORY",
            metavar="PATH",
            help="Only this container repository (path, location or ID). Repeatable; "
            "default: every repository of the project.",
            show_default=False,
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_INCLUDE",
            metavar="REGEX",
            help="Only tags matching REGEX (whole tag) may go. Repeatable.",
            show_default=False,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_EXCLUDE",
            metavar="REGEX",
            help="Tags matching REGEX (whole tag) stay. Repeatable.",
            show_default=False,
        ),
    ] = None,
    protect: ProtectOption = None,
    protect_semver: ProtectSemverOption = True,
    keep_n: Annotated[
        str | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_KEEP_N",
            metavar="N",
            help="Keep the N newest orphaned tags (by image creation time).",
            show_default=False,
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_OLDER_THAN",
            metavar="AGE",
            help="Delete only orphaned images older than AGE (30m, 12h, 7d, 2w, 1month).",
            show_default=False,
        ),
    ] = None,
    min_age: Annotated[
        str,
        typer.Option(
            envvar="REGISTRY_CLEANUP_MIN_AGE",
            metavar="AGE",
            help="Grace period: never delete an image younger than AGE.",
        ),
    ] = "5m",
    default_branch: Annotated[
        str | None,
        typer.Option(
            envvar="CI_DEFAULT_BRANCH",
            metavar="BRANCH",
            help="The default branch (default: the one GitLab marks in the branch list).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run/--delete",
            envvar="REGISTRY_CLEANUP_DRY_RUN",
            help="--delete really deletes; the default is a dry run that changes nothing.",
        ),
    ] = True,
    trust_branch_list: Annotated[
        bool,
        typer.Option(
            "--trust-branch-list",
            help="Delete even when the branch list looks broken (empty, no default branch, or "
            "far fewer branches than orphaned tags).",
        ),
    ] = False,
    via: ViaOption = Via.api,
    tls: TlsOption = TlsMode.enabled,
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            max=32,
            envvar="REGISTRY_CLEANUP_CONCURRENCY",
            metavar="N",
            help="Deletions in flight at once.",
        ),
    ] = 4,
    json_output: JsonOption = False,
    report: Annotated[
        Path | None,
        typer.Option(
            envvar="REGISTRY_CLEANUP_REPORT",
            metavar="FILE",
            dir_okay=False,
            help="Also write the JSON report to FILE (for CI artifacts).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete tags whose branch no longer exists (dry run unless --delete)."""
    from registry_cleanup.durations import parse_count, parse_duration
    from registry_cleanup.sweep import SweepOptions

    options = SweepOptions(
        repositories=tuple(repository or ()),
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        protect=tuple(protect or ()),
        protect_semver=protect_semver,
        # Empty values come from unset component inputs and mean "no such rule".
        keep_n=parse_count(keep_n, option="--keep-n") if keep_n else None,
        older_than=parse_duration(older_than, option="--older-than") if older_than else None,
        min_age=parse_duration(min_age, option="--min-age"),
        default_branch=default_branch,
        delete=not dry_run,
        trust_branch_list=trust_branch_list,
        concurrency=concurrency,
    )
    settings = ApiSettings(api_url, project)
    registry = None
    if via is Via.registry:
        registry = api_commands.RegistryLogin.from_env(tls)
    raise typer.Exit(
        api_commands.run_sweep(
            settings, options, json_output=json_output, report=report, registry=registry
        )
    )


@app.command("bulk-delete")
def bulk_delete(
    name_regex_delete: Annotated[
        str,
        typer.Option(metavar="REGEX", help="Tags to delete (RE2, whole tag); '.*' for all."),
    ],
    name_regex_keep: Annotated[
        str | None,
        typer.Option(metavar="REGEX", help="Tags to keep, overriding --name-regex-delete."),
    ] = None,
    keep_n: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", help="Keep the N newest matching tags."),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(metavar="AGE", help="Delete only tags older than AGE (1h, 7d, 1month)."),
    ] = None,
    repository: RepositoryOption = None,
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
) -> None:
    """Ask GitLab to delete matching tags in the background (Maintainer; once an hour).

    GitLab answers 202 and works asynchronously; it never deletes 'latest'. It accepts one
    bulk delete per repository per hour and answers 400 to the next; this command says so.
    """
    from registry_cleanup.durations import parse_duration
    from registry_cleanup.safety import compile_pattern

    compile_pattern(name_regex_delete, option="--name-regex-delete")
    if name_regex_keep is not None:
        compile_pattern(name_regex_keep, option="--name-regex-keep")
    if older_than is not None:
        parse_duration(older_than, option="--older-than")
    raise typer.Exit(
        api_commands.run_bulk_delete(
            ApiSettings(api_url, project),
            repository,
            name_regex_delete=name_regex_delete,
            name_regex_keep=name_regex_keep,
            keep_n=keep_n,
            older_than=older_than,
        )
    )


@app.command("delete-repository")
def delete_repository(
    repository: RepositoryOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
) -> None:
    """Delete a whole container repository and all its tags (Maintainer)."""
    raise typer.Exit(
        api_commands.run_delete_repository(ApiSettings(api_url, project), repository, yes)
    )


policy_app = typer.Typer(
    help="Show or change the project's container registry cleanup policy.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def policy_show(
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the cleanup policy (needs an access token; a job token cannot read projects)."""
    raise typer.Exit(api_commands.run_policy_show(ApiSettings(api_url, project), json_output))


@policy_app.command("set")
def policy_set(
    enabled: Annotated[
        bool | None,
        typer.Option("--enabled/--disabled", help="Turn the policy on or off.", show_default=False),
    ] = None,
    cadence: Annotated[
        str | None,
        typer.Option(metavar="1d|7d|14d|1month|3month", help="How often it runs."),
    ] = None,
    keep_n: Annotated[
        int | None,
        typer.Option(metavar="1|5|10|25|50|100", help="Tags to keep per image name."),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(metavar="7d|14d|30d|90d", help="Remove tags older than this."),
    ] = None,
    name_regex: Annotated[
        str | None, typer.Option(metavar="RE2", help="Tags to remove (anchored).")
    ] = None,
    name_regex_keep: Annotated[
        str | None, typer.Option(metavar="RE2", help="Tags to keep (anchored).")
    ] = None,
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change the cleanup policy (Maintainer). Values are checked before anything is sent."""
    attributes = {
        "enabled": enabled,
        "cadence": cadence,
        "keep_n": keep_n,
        "older_than": older_than,
        "name_regex": name_regex,
        "name_regex_keep": name_regex_keep,
    }
    raise typer.Exit(
        api_commands.run_policy_set(ApiSettings(api_url, project), attributes, json_output)
    )


# Ctrl-C at a terminal; GitLab cancelling a job or timing it out.
_STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Our own handler for SIGINT too: typer turns KeyboardInterrupt into a silent exit 130.
    # One line says why the run stopped; SystemExit unwinds the 'with' blocks, so a tag on
    # regctl's placeholder is restored and the private regctl config is removed.
    _stderr_line(_STOP_SIGNALS[signal.Signals(signum)])
    raise SystemExit(128 + signum)


def main() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    try:
        # Without standalone mode typer returns typer.Exit's code instead of exiting.
        result = app(standalone_mode=False)
    except InputError as error:
        _stderr_line(f"error: {error}")
        sys.exit(error.exit_code)
    except CleanupError as error:
        _stderr_line(str(error))
        sys.exit(error.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        _stderr_line("aborted")
        sys.exit(130)
    except Exception as error:
        # Usage errors from the option parser: one line, exit 2, like our own input errors.
        if hasattr(error, "format_message") and getattr(error, "exit_code", None) == 2:
            _stderr_line(f"error: {error.format_message()} (see {PROG} --help)")
            sys.exit(EXIT_INPUT_ERROR)
        raise
    sys.exit(result if isinstance(result, int) else 0)
