"""GitLab's own registry operations: bulk delete, delete a repository, the cleanup policy."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from registry_cleanup.cli import connect
from registry_cleanup.cli.options import ApiUrlOption, JsonOption, ProjectOption, RepositoryOption
from registry_cleanup.errors import EXIT_FAILURE, InputError
from registry_cleanup.output.shown import Output, stderr_line


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
    from registry_cleanup.domain.durations import parse_duration
    from registry_cleanup.domain.safety import compile_pattern

    compile_pattern(name_regex_delete, option="--name-regex-delete")
    if name_regex_keep is not None:
        compile_pattern(name_regex_keep, option="--name-regex-keep")
    if older_than is not None:
        parse_duration(older_than, option="--older-than")
    from registry_cleanup.gitlab import GitLabApiError

    api = connect.project_api(api_url, project)
    found = connect.find_repository(api, repository)
    try:
        sent = api.registry.bulk_delete(
            found,
            name_regex_delete=name_regex_delete,
            name_regex_keep=name_regex_keep,
            keep_n=keep_n,
            older_than=older_than,
        )
    except GitLabApiError as error:
        if error.status == 400 and "once an hour" in str(error):
            stderr_line(
                f"{error}. GitLab accepts one bulk delete per repository per hour; the "
                "previous request is still within its hour. Try again later, or use "
                "'registry-cleanup sweep --delete', which deletes tag by tag"
            )
            raise typer.Exit(EXIT_FAILURE) from None
        raise
    typer.echo(
        f"scheduled: GitLab accepted the bulk delete for {found.location} (HTTP 202); "
        "it runs in the background and never deletes 'latest'"
    )
    # Exactly what GitLab received: the regexes grouped so they mean the whole tag there.
    typer.echo(f"sent: {_sent_line(sent)}")


def delete_repository(
    repository: RepositoryOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
) -> None:
    """Delete a whole container repository and all its tags (Maintainer)."""
    api = connect.project_api(api_url, project)
    found = connect.find_repository(api, repository)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(
                f"deleting {found.location} and all its tags needs confirmation; "
                "pass --yes (no terminal to ask at)"
            )
        question = f"Delete container repository {found.location} and ALL its tags?"
        if not typer.confirm(question, default=False):
            stderr_line("not confirmed; nothing was deleted")
            raise typer.Exit(EXIT_FAILURE)
    api.registry.delete(found)
    typer.echo(f"scheduled: GitLab is deleting {found.location} (HTTP 202)")


policy_app = typer.Typer(
    help="Show or change the project's container registry cleanup policy.",
    no_args_is_help=True,
)


@policy_app.command("show")
def policy_show(
    api_url: ApiUrlOption = None,
    project: ProjectOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the cleanup policy (needs an access token; a job token cannot read projects)."""
    policy = connect.project_api(api_url, project).settings.policy()
    raise typer.Exit(Output(json_output).show_mapping(policy))


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
    from registry_cleanup.domain.policy import validate

    changes = validate(attributes)
    if not changes:
        raise InputError("nothing to change; pass at least one of the policy options")
    policy = connect.project_api(api_url, project).settings.set_policy(changes)
    Output(json_output).show_mapping(policy)
    regexes: dict[str, Any] = {
        key: changes[key] for key in ("name_regex", "name_regex_keep") if key in changes
    }
    if regexes:
        # On stderr, so that --json stays one document; the grouping is what GitLab stores.
        stderr_line(f"sent: {_sent_line(regexes)}")


def _sent_line(sent: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in sent.items())
