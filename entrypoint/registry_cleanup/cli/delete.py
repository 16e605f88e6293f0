"""``registry-cleanup delete``: one tag, through the registry (regctl) or GitLab's API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from registry_cleanup.cli import connect
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
)
from registry_cleanup.domain.ci import CiContext
from registry_cleanup.domain.safety import ProtectionRules
from registry_cleanup.engine.deletion import (
    DeleteRequest,
    delete_tag,
    explain_failure,
    parse_digest,
)
from registry_cleanup.engine.outcome import Outcome, failed_outcome
from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.output.shown import Output
from registry_cleanup.registry.hosts import TlsMode, check_ca_file
from registry_cleanup.registry.regctl import DEFAULT_TIMEOUT_SECONDS

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
    output = Output(json_output, report=report)
    try:
        if via is Via.api:
            outcome = _through_api(request, api_url, project, tls)
        else:
            registry_options = connect.RegistryOptions(
                login_host, username, password, tls, ca_file, docker_config, timeout, verbose
            )
            with registry_options.session(target.registry) as session:
                outcome = delete_tag(request, session)
    except InputError:
        raise  # exit 2 in main(), like every other input error
    except CleanupError as error:
        # GitLab or the registry could not be asked: a failed outcome all the same, so the
        # report and the JSON are written whichever way the delete went.
        outcome = failed_outcome(target, explain_failure(error))
    raise typer.Exit(output.show_delete(outcome, target, dry_run=dry_run))


def _through_api(
    request: DeleteRequest, api_url: str | None, project: str | None, tls: TlsMode
) -> Outcome:
    """deletion.delete_tag's steps over GitLab's single-tag endpoint."""
    api = connect.project_api(api_url, project)
    repository = connect.find_repository(api, request.target.repository_ref)
    # For a tag GitLab cannot read (an image index without its metadata database).
    reads = connect.RegistryLogin.from_env(tls)
    with connect.registry_access(None, reads) as access:
        return delete_tag(request, access.store_for(api)(repository))
