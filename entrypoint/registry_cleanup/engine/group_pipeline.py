"""The child pipeline that fans a group sweep out over GitLab's runners (pure: projects -> YAML).

The planning job of templates/group-sweep.yml lists the group's projects with container
repositories (group-level calls only) and writes this pipeline; its trigger job runs it with
``trigger:include:artifact``. One sweep job per project, or, past ``max_jobs`` projects, that
many jobs with a batch each; every job writes one report per project, and a last job merges
them into one document. A failing project fails its job but never the other projects: each
project's sweep in a batch runs whatever happened to the one before.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from registry_cleanup.engine.group_sweep import GroupProject
from registry_cleanup.errors import InputError

REPORTS_DIRECTORY = "registry-cleanup-reports"
GROUP_REPORT = "registry-cleanup-group-sweep.json"
SWEEP_STAGE = "registry-cleanup-sweep"
REPORT_STAGE = "registry-cleanup-report"
JOB_PREFIX = "registry-cleanup:sweep"
MERGE_JOB = "registry-cleanup:report"
MAX_JOBS_LIMIT = 1000


@dataclass(frozen=True)
class ChildPipelineSettings:
    image: str
    max_jobs: int = 100
    artifacts_expire_in: str = "30 days"

    def __post_init__(self) -> None:
        if not self.image:
            raise InputError(
                "no image for the child pipeline's jobs: pass --image (in CI it defaults to "
                "the planning job's own image, CI_JOB_IMAGE)"
            )
        if not 1 <= self.max_jobs <= MAX_JOBS_LIMIT:
            raise InputError(f"--max-jobs must be between 1 and {MAX_JOBS_LIMIT}")


def batches(projects: Sequence[GroupProject], max_jobs: int) -> list[list[GroupProject]]:
    """One project per batch up to ``max_jobs`` projects; beyond, ``max_jobs`` batches whose
    sizes differ by at most one, in path order."""
    if len(projects) <= max_jobs:
        return [[project] for project in projects]
    size, extra = divmod(len(projects), max_jobs)
    result, start = [], 0
    for index in range(max_jobs):
        end = start + size + (1 if index < extra else 0)
        result.append(list(projects[start:end]))
        start = end
    return result


def report_path(project: GroupProject) -> str:
    return f"{REPORTS_DIRECTORY}/{project.id}.json"


def child_pipeline(
    group: str, projects: Sequence[GroupProject], settings: ChildPipelineSettings
) -> dict[str, Any]:
    """The child pipeline as a YAML-ready mapping."""
    pipeline: dict[str, Any] = {"stages": [SWEEP_STAGE, REPORT_STAGE]}
    groups = batches(projects, settings.max_jobs)
    for index, batch in enumerate(groups, start=1):
        name = (
            f"{JOB_PREFIX} {batch[0].path}"
            if len(batch) == 1 and len(groups) == len(projects)
            else f"{JOB_PREFIX} {index}/{len(groups)}"
        )
        pipeline[name] = _sweep_job(batch, settings)
    pipeline[MERGE_JOB] = _merge_job(group, projects, settings)
    return pipeline


def _sweep_job(batch: Sequence[GroupProject], settings: ChildPipelineSettings) -> dict[str, Any]:
    """One job sweeping its batch of projects, each writing its report."""
    script = ["status=0"]
    for project in batch:
        # `|| status=1`: the next project is swept even when this one failed; the job
        # still fails at the end. The shell's -e does not stop at a command before ||.
        arguments = ["sweep", "--project", project.path, "--report", report_path(project)]
        command = shlex.join(["registry-cleanup", *arguments])
        script.append(f"{command} || status=1")
    script.append('exit "$status"')
    return {
        "stage": SWEEP_STAGE,
        "image": settings.image,
        # The sweep reads everything through GitLab's API: no sources needed.
        "variables": {"GIT_STRATEGY": "none"},
        "script": script,
        "artifacts": {
            "when": "always",
            "expire_in": settings.artifacts_expire_in,
            "paths": [f"{REPORTS_DIRECTORY}/"],
        },
    }


def _merge_job(
    group: str, projects: Sequence[GroupProject], settings: ChildPipelineSettings
) -> dict[str, Any]:
    """The last job: the per-project reports merged into the group's."""
    arguments = ["--group", group, "--reports", REPORTS_DIRECTORY, "--report", GROUP_REPORT]
    merge = shlex.join(["registry-cleanup", "merge-reports", *arguments])
    return {
        "stage": REPORT_STAGE,
        "image": settings.image,
        # After failed sweep jobs too: the merged report names the projects that failed.
        "when": "always",
        "variables": {
            "GIT_STRATEGY": "none",
            # A project whose job wrote no report is named in the merged report as failed.
            "REGISTRY_CLEANUP_EXPECTED_PROJECTS": " ".join(p.path for p in projects),
        },
        # An empty group still gets a valid pipeline: this job alone, reporting no projects.
        "script": [f"mkdir -p {REPORTS_DIRECTORY}", merge],
        "artifacts": {
            "when": "always",
            "expire_in": settings.artifacts_expire_in,
            "paths": [GROUP_REPORT],
        },
    }
