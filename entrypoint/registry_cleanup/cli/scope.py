"""Which scope a sweep runs in (one project or a group), and whose default branch applies, from
where each option came: the command line beats the CI job's environment."""

from __future__ import annotations

import os

import typer

from registry_cleanup.errors import InputError


def _from_command_line(context: typer.Context, name: str) -> bool:
    source = context.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def own_default_branch(
    context: typer.Context, default_branch: str | None, project: str | None, group: str | None
) -> str | None:
    """CI_DEFAULT_BRANCH belongs to the pipeline's own project (CI_PROJECT_ID): it is no
    default for another project, and with --group each project's comes from its branch list."""
    if default_branch is None or _from_command_line(context, "default_branch"):
        return default_branch
    if group is not None:
        return None
    own = {os.environ.get("CI_PROJECT_ID"), os.environ.get("CI_PROJECT_PATH")}
    if _from_command_line(context, "project") and project not in own:
        return None
    return default_branch


def group_of(context: typer.Context, group: str | None) -> str | None:
    """The group to sweep, if any. --project on the command line beats REGISTRY_CLEANUP_GROUP
    from the environment (a child job sweeping one project of the group); the group-only
    options without a group are refused rather than ignored."""
    from_environment = group is not None and not _from_command_line(context, "group")
    if from_environment and _from_command_line(context, "project"):
        return None
    if group is None:
        for name, flag in (
            ("subgroups", "--subgroups/--no-subgroups"),
            ("include_project", "--include-project"),
            ("exclude_project", "--exclude-project"),
        ):
            if _from_command_line(context, name):
                raise InputError(f"{flag} picks projects of a group; it needs --group")
    return group


def refuse_project_options(context: typer.Context) -> None:
    """With --group each project is swept whole: one project or repository cannot be named."""
    for name, flag in (("project", "--project"), ("repository", "--repository")):
        if _from_command_line(context, name):
            raise InputError(f"{flag} and --group cannot go together: pick one scope")
