"""``group-pipeline`` and ``merge-reports``: fan a group sweep out over a GitLab child pipeline
(templates/group-sweep.yml) and put the per-project reports back together."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry_cleanup.cli import connect
from registry_cleanup.cli.options import (
    ApiUrlOption,
    ExcludeProjectOption,
    IncludeProjectOption,
    JsonOption,
    SubgroupsOption,
)
from registry_cleanup.errors import InputError
from registry_cleanup.output.shown import Output, stderr_line

PIPELINE_EPILOG = """\
Examples:

\b
  # The planning job of templates/group-sweep.yml: one sweep job per project, at most 50
  registry-cleanup group-pipeline --group my-group --max-jobs 50 --output child.yml

Exit codes: 0 written; 1 GitLab refused or failed; 2 bad input (a job token, say).
"""


def group_pipeline(
    group: Annotated[
        str,
        typer.Option(
            "--group",
            envvar="REGISTRY_CLEANUP_GROUP",
            metavar="ID|PATH",
            help="The group (ID or full path).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", metavar="FILE", dir_okay=False, help="Where to write the child pipeline."
        ),
    ],
    api_url: ApiUrlOption = None,
    subgroups: SubgroupsOption = True,
    include_project: IncludeProjectOption = None,
    exclude_project: ExcludeProjectOption = None,
    max_jobs: Annotated[
        int,
        typer.Option(
            envvar="REGISTRY_CLEANUP_MAX_JOBS",
            metavar="N",
            help="One sweep job per project up to N projects; beyond, N jobs with a batch each.",
        ),
    ] = 100,
    image: Annotated[
        str | None,
        typer.Option(
            envvar="CI_JOB_IMAGE",
            metavar="IMAGE",
            help="Image of the child pipeline's jobs (default: this job's own, CI_JOB_IMAGE).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the child pipeline that sweeps each project of a group in its own job."""
    from registry_cleanup.engine.group_pipeline import (
        ChildPipelineSettings,
        batches,
        child_pipeline,
    )
    from registry_cleanup.engine.group_sweep import ProjectSelection, listed_projects
    from registry_cleanup.output.report import write_document

    selection = ProjectSelection(
        subgroups, tuple(include_project or ()), tuple(exclude_project or ())
    )
    settings = ChildPipelineSettings(image=image or "", max_jobs=max_jobs)
    group_path, projects = listed_projects(connect.group_api(api_url, group), selection)
    # JSON is YAML: GitLab reads it as the child pipeline, and the image needs no YAML library.
    write_document(output, child_pipeline(group_path, projects, settings))
    jobs = len(batches(projects, settings.max_jobs))
    stderr_line(
        f"group {group_path}: {len(projects)} projects with container repositories, "
        f"{jobs} sweep jobs; child pipeline written to {output}"
    )


def merge_reports(
    group: Annotated[
        str,
        typer.Option(
            "--group",
            envvar="REGISTRY_CLEANUP_GROUP",
            metavar="PATH",
            help="The group the reports belong to (named in the merged report).",
        ),
    ],
    reports: Annotated[
        Path,
        typer.Option(
            "--reports",
            metavar="DIR",
            file_okay=False,
            help="Directory of per-project sweep reports (sweep --report), one *.json each.",
        ),
    ],
    expected: Annotated[
        list[str] | None,
        typer.Option(
            "--expect",
            envvar="REGISTRY_CLEANUP_EXPECTED_PROJECTS",
            metavar="PROJECT",
            help="A project that must have a report; without one it counts as failed. "
            "Repeatable; the environment variable takes space-separated paths.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="Write the merged report to FILE.",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Merge per-project sweep reports into one group report; exit 1 if any project failed."""
    from registry_cleanup.output.group_report import merge_reports as merged

    if not reports.is_dir():
        raise InputError(f"--reports {reports} is not a directory")
    document = merged(group, sorted(reports.glob("*.json")), list(expected or ()))
    raise typer.Exit(Output(json_output, report=report).show_merged(document))
