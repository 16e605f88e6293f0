"""GitLab's own registry operations: bulk delete, delete a repository, the cleanup policy."""

from __future__ import annotations

from typing import Annotated

import typer

from registry_cleanup import api_commands
from registry_cleanup.api_commands import ApiSettings
from registry_cleanup.cli.options import ApiUrlOption, JsonOption, ProjectOption, RepositoryOption


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
