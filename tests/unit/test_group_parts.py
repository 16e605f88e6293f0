"""The group sweep's pure parts: which projects, how they are batched into jobs, how the
per-project reports merge."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_cleanup.engine.group_pipeline import (
    MERGE_JOB,
    ChildPipelineSettings,
    batches,
    child_pipeline,
)
from registry_cleanup.engine.group_sweep import GroupProject, ProjectSelection, projects_of
from registry_cleanup.errors import InputError
from registry_cleanup.gitlab import GroupRepository
from registry_cleanup.output.group_report import merge_reports


def repo(project_id: int, project: str, name: str = "") -> GroupRepository:
    path = f"{project}/{name}" if name else project
    return GroupRepository(project_id * 100, name, path, f"registry.example/{path}", project_id)


LISTING = [
    repo(1, "acme/app"),
    repo(1, "acme/app", "worker/nightly"),
    repo(2, "acme/app2"),
    repo(3, "acme/platform/api"),
    repo(4, "acme/platform/deep/db"),
]


def paths(projects: list[GroupProject]) -> list[str]:
    return [project.path for project in projects]


def test_projects_are_grouped_with_their_repositories_in_path_order() -> None:
    found = projects_of("acme", list(reversed(LISTING)), ProjectSelection())
    assert paths(found) == ["acme/app", "acme/app2", "acme/platform/api", "acme/platform/deep/db"]
    # A repository name with slashes still belongs to its project.
    assert [r.path for r in found[0].repositories] == ["acme/app", "acme/app/worker/nightly"]


def test_no_subgroups_keeps_the_groups_own_projects_only() -> None:
    found = projects_of("Acme", LISTING, ProjectSelection(subgroups=False))
    assert paths(found) == ["acme/app", "acme/app2"]
    nested = projects_of("acme/platform", LISTING, ProjectSelection(subgroups=False))
    assert paths(nested) == ["acme/platform/api"]


def test_project_patterns_match_the_whole_path() -> None:
    only_app = projects_of("acme", LISTING, ProjectSelection(include=("acme/app",)))
    assert paths(only_app) == ["acme/app"]
    no_platform = projects_of("acme", LISTING, ProjectSelection(exclude=("acme/platform/.*",)))
    assert paths(no_platform) == ["acme/app", "acme/app2"]
    both = ProjectSelection(include=("acme/.*",), exclude=("acme/app2", ".*/db"))
    assert paths(projects_of("acme", LISTING, both)) == ["acme/app", "acme/platform/api"]


def test_a_bad_project_pattern_is_refused_up_front() -> None:
    with pytest.raises(InputError, match="--exclude-project"):
        ProjectSelection(exclude=("(",))


def project(n: int) -> GroupProject:
    return GroupProject(id=n, path=f"acme/app-{n:03d}", repositories=())


@given(st.integers(min_value=0, max_value=300), st.integers(min_value=1, max_value=60))
def test_batches_cover_every_project_once_in_order_and_evenly(count: int, max_jobs: int) -> None:
    projects = [project(n) for n in range(count)]
    made = batches(projects, max_jobs)
    assert [p for batch in made for p in batch] == projects
    assert len(made) == min(count, max_jobs)
    sizes = {len(batch) for batch in made}
    assert not sizes or max(sizes) - min(sizes) <= 1


def test_one_job_per_project_within_max_jobs_with_quoted_commands() -> None:
    pipeline = child_pipeline("acme", [project(1), project(2)], ChildPipelineSettings("img:1"))
    jobs = [name for name in pipeline if name != "stages"]
    assert jobs == [
        "registry-cleanup:sweep acme/app-001",
        "registry-cleanup:sweep acme/app-002",
        MERGE_JOB,
    ]
    script = pipeline["registry-cleanup:sweep acme/app-001"]["script"]
    assert script[0] == "status=0"
    assert script[-1] == 'exit "$status"'
    command, _, rest = script[1].partition(" || ")
    assert rest == "status=1"
    assert shlex.split(command) == [
        *("registry-cleanup", "sweep", "--project", "acme/app-001"),
        *("--report", "registry-cleanup-reports/1.json"),
    ]
    merge = pipeline[MERGE_JOB]
    assert merge["when"] == "always"
    assert merge["variables"]["REGISTRY_CLEANUP_EXPECTED_PROJECTS"] == "acme/app-001 acme/app-002"


def test_beyond_max_jobs_projects_are_batched_and_an_empty_group_is_still_a_pipeline() -> None:
    pipeline = child_pipeline("acme", [project(n) for n in range(5)], ChildPipelineSettings("i", 2))
    assert [len(pipeline[f"registry-cleanup:sweep {k}/2"]["script"]) for k in (1, 2)] == [5, 4]
    empty = child_pipeline("acme", [], ChildPipelineSettings("i"))
    assert [name for name in empty if name != "stages"] == [MERGE_JOB]
    with pytest.raises(InputError, match="--max-jobs"):
        ChildPipelineSettings("i", 0)
    with pytest.raises(InputError, match="no image"):
        ChildPipelineSettings("")


def report(directory: Path, name: str, document: dict[str, object]) -> None:
    base = {"version": 1, "dry_run": False, "summary": {"kept": 1, "deleted": 2}, "tags": []}
    (directory / f"{name}.json").write_text(json.dumps({**base, **document}))


def test_merge_names_failed_refused_and_missing_projects(tmp_path: Path) -> None:
    report(tmp_path, "1", {"project": "acme/app"})
    report(tmp_path, "2", {"project": "acme/empty", "refused": True, "guard": "no branches"})
    report(tmp_path, "3", {"project": "acme/locked", "failed": True, "error": "403 Forbidden"})
    failed_tag = {"repository": "r", "tag": "t", "status": "failed", "reason": "boom"}
    report(tmp_path, "4", {"project": "acme/flaky", "tags": [failed_tag]})

    expected = ["acme/app", "acme/empty", "acme/flaky", "acme/locked", "acme/gone"]
    merged = merge_reports("acme", sorted(tmp_path.glob("*.json")), expected)

    assert merged["failed_projects"] == ["acme/empty", "acme/flaky", "acme/gone", "acme/locked"]
    errors = {s["project"]: s["error"] for s in merged["projects"]}
    assert errors["acme/app"] is None
    assert errors["acme/empty"] == "the guard refused to delete: no branches"
    assert errors["acme/locked"] == "403 Forbidden"
    assert errors["acme/gone"] == "no report: the project's sweep job did not finish"
    assert merged["summary"]["deleted"] == 8
    assert merged["dry_run"] is False
    assert merged["projects_total"] == 5


def test_merge_refuses_a_file_that_is_not_a_sweep_report(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a registry-cleanup sweep report"):
        merge_reports("acme", [tmp_path / "x.json"])
