"""templates/sweep.yml in gitlab-ci-local: the page as an exposed artifact, and reviewed mode
(the scheduled job plans, a manual job applies that plan) run for real against the emulator."""

from __future__ import annotations

import json
from typing import Any

from devkit.images import ImagePusher
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.support.gitlab_ci_local import Project, component
from tests.support.templates import NewProject

JOB = "registry-cleanup:sweep"
APPLY = "registry-cleanup:sweep:apply"
SCHEDULE = {"CI_PIPELINE_SOURCE": "schedule"}


def sweep_project(new_project: NewProject, inputs: dict[str, Any], name: str) -> Project:
    project = new_project(name)
    project.write_pipeline({"include": [{"component": component("sweep"), "inputs": inputs}]})
    return project


def test_jobs_of_both_modes(new_project: NewProject) -> None:
    plain = sweep_project(new_project, {}, "plain")
    reviewed = sweep_project(new_project, {"reviewed": True}, "reviewed")

    plain_jobs = plain.jobs(SCHEDULE)
    reviewed_jobs = reviewed.jobs(SCHEDULE)
    pushed = reviewed.jobs({"CI_PIPELINE_SOURCE": "push"})

    assert {name: job["when"] for name, job in plain_jobs.items()} == {JOB: "on_success"}
    assert {name: job["when"] for name, job in reviewed_jobs.items()} == {
        JOB: "on_success",
        APPLY: "manual",
    }
    assert reviewed_jobs[APPLY]["allow_failure"] is True
    assert pushed == {}
    preview = reviewed.preview(SCHEDULE)
    assert preview[JOB]["artifacts"]["expose_as"] == "registry-cleanup sweep"
    assert "registry-cleanup-sweep.html" in preview[JOB]["artifacts"]["paths"]
    (needed,) = preview[APPLY]["needs"]
    assert {"job": JOB, "artifacts": True}.items() <= needed.items()
    assert preview[APPLY]["artifacts"]["expose_as"] == "registry-cleanup apply"


def test_reviewed_mode_plans_on_schedule_and_the_manual_job_applies_the_plan(
    new_project: NewProject, gitlab_emulator: GitLabEmulator, pusher: ImagePusher
) -> None:
    app = gitlab_emulator.add_project("group/app", branches=["main", "feature/live"])
    gitlab_emulator.add_repository(app)
    for tag in ("main", "feature-live", "gone-a", "gone-b"):
        pusher.push("group/app", tag)
    project = sweep_project(
        new_project, {"reviewed": True, "min_age": "0s", "token_variable": "SWEEP_TOKEN"}, "app"
    )
    token = gitlab_emulator.personal_token(app, Role.developer)
    # A variables file, as a project's CI/CD variables: the token stays out of argv.
    registry = pusher.registry
    (project.directory / ".gitlab-ci-local-variables.yml").write_text(
        json.dumps({"SWEEP_TOKEN": token, "CI_REGISTRY_PASSWORD": registry.password})
    )
    variables = {
        **SCHEDULE,
        "CI_API_V4_URL": gitlab_emulator.url,
        "CI_PROJECT_ID": str(app.id),
        "CI_DEFAULT_BRANCH": "main",
        # The job's registry login, as GitLab gives every job: the sizes (an input, on by
        # default) are read with it.
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": registry.username,
        "REGISTRY_CLEANUP_TLS": "disabled",
    }

    planned = project.run_jobs(JOB, variables=variables)

    assert f"PASS  {JOB}" in planned.output, planned.output
    assert pusher.registry.tags("group/app") == ["feature-live", "gone-a", "gone-b", "main"]
    artifacts = project.directory / ".gitlab-ci-local" / "artifacts"
    (plan,) = artifacts.rglob("registry-cleanup-plan.json")
    (page,) = artifacts.rglob("registry-cleanup-sweep.html")
    assert json.loads(plan.read_text())["kind"] == "plan"
    assert "gone-a" in page.read_text()
    pusher.push("group/app", "gone-b", seed="pushed again after the review")

    applied = project.run_jobs(APPLY, variables=variables)

    assert f"PASS  {APPLY}" in applied.output, applied.output
    assert pusher.registry.tags("group/app") == ["feature-live", "gone-b", "main"]
    (result,) = artifacts.rglob("registry-cleanup-apply.json")
    statuses = {t["tag"]: t["status"] for t in json.loads(result.read_text())["tags"]}
    assert statuses["gone-a"] == "deleted"
    assert statuses["gone-b"] == "skipped"
    # What the apply freed: gone-a alone (gone-b was pushed again, and kept).
    assert json.loads(result.read_text())["summary"]["reclaimable_bytes"] > 0
    assert applied.output.rstrip().count("frees about") == 1, applied.output
    assert list(artifacts.rglob("registry-cleanup-apply.html"))
    assert token not in planned.output + applied.output
