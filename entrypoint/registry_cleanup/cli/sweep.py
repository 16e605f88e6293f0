"""``registry-cleanup sweep``: a project's orphaned tags, planned and (with --delete) deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry_cleanup import api_commands
from registry_cleanup.api_commands import ApiSettings
from registry_cleanup.cli.options import (
    ApiUrlOption,
    JsonOption,
    ProjectOption,
    ProtectOption,
    ProtectSemverOption,
    TlsOption,
    Via,
    ViaOption,
)
from registry_cleanup.regctl import TlsMode

# How old a plan --apply still accepts (the issue: a week).
DEFAULT_MAX_PLAN_AGE = "7d"

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

Exit codes: 0 done; 1 a deletion failed, the guard refused, or the git tags could not be
listed; 2 bad input.
"""


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
    from registry_cleanup.durations import parse_count, parse_duration
    from registry_cleanup.errors import InputError
    from registry_cleanup.sweep import SweepOptions

    settings = ApiSettings(api_url, project)
    registry = None
    if via is Via.registry:
        registry = api_commands.RegistryLogin.from_env(tls)
    if plan_out is not None and not dry_run:
        raise InputError("--plan-out makes a plan and deletes nothing; drop --delete")
    if apply is not None:
        if plan_out is not None:
            raise InputError("--apply and --plan-out cannot be combined; plan first, then apply")
        # The plan's own options decide; its deletions were the dry run that was reviewed.
        raise typer.Exit(
            api_commands.run_apply(
                settings,
                apply,
                max_age=max_plan_age,
                trust_branch_list=trust_branch_list,
                concurrency=concurrency,
                json_output=json_output,
                report=report,
                registry=registry,
                html=html,
            )
        )

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
        record_digests=plan_out is not None,
    )
    raise typer.Exit(
        api_commands.run_sweep(
            settings,
            options,
            json_output=json_output,
            report=report,
            registry=registry,
            plan_out=plan_out,
            html=html,
        )
    )
