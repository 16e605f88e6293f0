"""``registry-cleanup sweep``: a project's (or a group's) orphaned tags, planned and (with
--delete) deleted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from registry_cleanup.cli import connect, scope
from registry_cleanup.cli.options import (
    ApiUrlOption,
    ExcludeProjectOption,
    GroupOption,
    IncludeProjectOption,
    JsonOption,
    ProjectOption,
    ProtectOption,
    ProtectSemverOption,
    SubgroupsOption,
    TlsOption,
    Via,
    ViaOption,
)
from registry_cleanup.errors import InputError
from registry_cleanup.output.shown import Output
from registry_cleanup.pool import DEFAULT_CONCURRENCY, DEFAULT_REGCTL_CONCURRENCY, MAX_CONCURRENCY
from registry_cleanup.registry.hosts import TlsMode

# How old a plan --apply still accepts (the issue: a week).
DEFAULT_MAX_PLAN_AGE = "7d"

if TYPE_CHECKING:
    pass

EPILOG = """\
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
\b
  # Reviewed mode: plan now, look at the plan, apply exactly that later
  registry-cleanup sweep --plan-out plan.json
  registry-cleanup sweep --apply plan.json

\b
  # Every project of a group and its subgroups, with a group access token
  GITLAB_TOKEN=... registry-cleanup sweep --group my-group --exclude-project 'my-group/legacy/.*'

Exit codes: 0 done; 1 a deletion failed, the guard refused or the git tags could not be listed
(with --group: in any project); 2 bad input.
"""


def sweep(
    context: typer.Context,
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
        int | None,
        typer.Option(
            min=1,
            max=MAX_CONCURRENCY,
            envvar="REGISTRY_CLEANUP_CONCURRENCY",
            metavar="N",
            show_default=False,
            help=f"Requests in flight at once [default: {DEFAULT_CONCURRENCY}; "
            f"{DEFAULT_REGCTL_CONCURRENCY} with --via registry, where each is a regctl process].",
        ),
    ] = None,
    group: GroupOption = None,
    subgroups: SubgroupsOption = True,
    include_project: IncludeProjectOption = None,
    exclude_project: ExcludeProjectOption = None,
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
    plan_out: Annotated[
        Path | None,
        typer.Option(
            "--plan-out",
            metavar="FILE",
            dir_okay=False,
            help="Dry run that writes the plan to FILE, for review and a later --apply.",
            show_default=False,
        ),
    ] = None,
    apply: Annotated[
        Path | None,
        typer.Option(
            "--apply",
            metavar="FILE",
            dir_okay=False,
            help="Delete exactly the plan's deletions whose tags are unchanged (the plan's "
            "options are used; changed tags are skipped, new ones untouched).",
            show_default=False,
        ),
    ] = None,
    max_plan_age: Annotated[
        str,
        typer.Option(
            envvar="REGISTRY_CLEANUP_MAX_PLAN_AGE",
            metavar="AGE",
            help="--apply refuses a plan older than AGE.",
        ),
    ] = DEFAULT_MAX_PLAN_AGE,
    sizes: Annotated[
        bool,
        typer.Option(
            "--sizes",
            envvar="REGISTRY_CLEANUP_SIZES",
            help="Also say how much the cleanup frees: each tag's image is read from the "
            "registry (CI_REGISTRY, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD) and the report, "
            "table and page give the bytes freed and kept per repository (docs/sizes.md).",
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            envvar="REGISTRY_CLEANUP_HTML",
            metavar="FILE",
            dir_okay=False,
            help="Also write the report as one self-contained HTML page (plan, result or apply).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete tags whose branch or git tag no longer exists (dry run unless --delete).

    Signature, attestation and SBOM tags (sha256-<digest>.sig/.att/.sbom) go with the last tags
    of their image. GitLab's protected container tag rules are matched as GitLab does
    (anywhere in the tag); --protect, --include and --exclude match the whole tag.
    """
    from registry_cleanup.cli.sweep_run import SweepRun
    from registry_cleanup.domain.durations import parse_count, parse_duration
    from registry_cleanup.engine.group_sweep import ProjectSelection
    from registry_cleanup.engine.options import SweepOptions

    # The registry login serves deletes with --via registry, and in any case reads what
    # GitLab cannot say of a tag (an image index's age and digest) where credentials are set.
    reads = connect.RegistryLogin.from_env(tls)
    deletes = reads if via is Via.registry else None
    output = Output(json_output, report=report, page=html)
    run = SweepRun(api_url, project, deletes, reads, output, sizes)
    if plan_out is not None and not dry_run:
        raise InputError("--plan-out makes a plan and deletes nothing; drop --delete")
    scoped_group = scope.group_of(context, group)
    if scoped_group is not None and (plan_out or apply or html):
        raise InputError("--plan-out, --apply and --html take one project; drop --group")
    if apply is not None:
        if plan_out is not None:
            raise InputError("--apply and --plan-out cannot be combined; plan first, then apply")
        # The plan's own options decide; its deletions were the dry run that was reviewed.
        raise typer.Exit(run.apply(apply, max_plan_age, trust_branch_list, concurrency))

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
        default_branch=scope.own_default_branch(context, default_branch, project, group),
        delete=not dry_run,
        trust_branch_list=trust_branch_list,
        concurrency=concurrency
        or (DEFAULT_REGCTL_CONCURRENCY if via is Via.registry else DEFAULT_CONCURRENCY),
        record_digests=plan_out is not None,
    )
    if scoped_group is not None:
        scope.refuse_project_options(context)
        selection = ProjectSelection(
            subgroups, tuple(include_project or ()), tuple(exclude_project or ())
        )
        raise typer.Exit(run.group(scoped_group, selection, options))
    raise typer.Exit(run.project(options, plan_out))
