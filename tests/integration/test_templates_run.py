"""The components' jobs run for real: gitlab-ci-local, the real registry, regctl, our CLI.

gitlab-ci-local runs each job in the shell (--force-shell-executor), since no container engine
runs on the test machines. For the same reason the build job's `docker` is the recording shim
of tests/support/docker_shim.py, put first on PATH here: it pushes a real generated image to
the registry with regctl, so the digest record, the dotenv hand-over and the delete job all run
against a real image. The build job's docker-in-docker service is switched off the way a user
on a runner without dind would (`services: []`), because gitlab-ci-local would otherwise try to
start it with a container engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, registry_environment
from tests.conftest import RunCli, ci_env
from tests.support.gitlab_ci_local import BRANCH_SLUG, ROOT, Project, component
from tests.support.templates import NewProject

APP = "group/app"


@pytest.fixture
def docker_shim(tmp_path: Path) -> dict[str, str]:
    """A directory with the recording `docker`, and the environment that puts it first."""
    bin_dir = tmp_path / "shim-bin"
    bin_dir.mkdir()
    state = tmp_path / "shim-state"
    state.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m tests.support.docker_shim "$@"\n'
    )
    docker.chmod(0o755)
    base = registry_environment()
    return {**base, "PATH": f"{bin_dir}:{base['PATH']}", "DOCKER_SHIM_STATE": str(state)}


def ci_variables_file(project: Project, registry: LocalRegistry) -> None:
    """What GitLab gives every job, as gitlab-ci-local's variables file (keeps it out of argv)."""
    variables = {
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_IMAGE": f"{registry.host}/{APP}",
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "CI_DEFAULT_BRANCH": "main",
        # The test registry speaks plain HTTP; GitLab's registry would not need this.
        "REGISTRY_CLEANUP_TLS": "disabled",
    }
    (project.directory / ".gitlab-ci-local-variables.yml").write_text(json.dumps(variables))


def shim_calls(env: dict[str, str]) -> list[dict[str, Any]]:
    log = Path(env["DOCKER_SHIM_STATE"]) / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def branch_image_project(
    new_project: NewProject,
    registry: LocalRegistry,
    env: dict[str, str],
    inputs: dict[str, Any],
    name: str = "project",
) -> Project:
    project = new_project(name, **env)
    (project.directory / "docker").mkdir()
    (project.directory / "docker" / "app.Dockerfile").write_text("FROM scratch\nARG VERSION\n")
    project.write_pipeline(
        {
            "stages": ["build", "clean"],
            "include": [{"component": component("branch-image"), "inputs": inputs}],
            "branch-image:build": {"services": []},
        }
    )
    ci_variables_file(project, registry)
    return project


BUILD_INPUTS = {
    "context": "docker",
    "dockerfile": "docker/app.Dockerfile",
    "build_args": "VERSION=$CI_COMMIT_SHORT_SHA FLAVOUR=slim",
}


def passed(run_output: str, job: str) -> bool:
    return f"PASS  {job}" in run_output


def digest_record(project: Project) -> Path:
    """The build job's dotenv report where gitlab-ci-local keeps artifacts (one build job)."""
    found = list((project.directory / ".gitlab-ci-local" / "artifacts").rglob("branch-image.env"))
    assert len(found) == 1, found
    return found[0]


def recorded(project: Project) -> dict[str, str]:
    lines = digest_record(project).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def test_build_pushes_and_records_then_delete_removes_only_the_branch_tag(
    new_project: NewProject,
    registry: LocalRegistry,
    pusher: ImagePusher,
    docker_shim: dict[str, str],
) -> None:
    main_digest = pusher.push(APP, "main")
    project = branch_image_project(new_project, registry, docker_shim, BUILD_INPUTS)

    build = project.run_jobs("branch-image:build")
    assert passed(build.output, "branch-image:build"), build.output
    pushed = registry.digest(APP, BRANCH_SLUG)
    assert pushed is not None
    assert recorded(project) == {
        "BRANCH_IMAGE": f"{registry.host}/{APP}:{BRANCH_SLUG}",
        "BRANCH_IMAGE_DIGEST": pushed,
    }
    calls = shim_calls(docker_shim)
    assert [call["command"] for call in calls] == ["login", "build", "push", "inspect"]
    assert calls[0] == {"command": "login", "server": registry.host, "username": registry.username}
    assert calls[1]["file"] == "docker/app.Dockerfile"
    assert calls[1]["context"] == "docker"
    assert calls[1]["tags"] == [f"{registry.host}/{APP}:{BRANCH_SLUG}"]
    short_sha = calls[1]["build_args"][0].removeprefix("VERSION=")
    assert len(short_sha) == 8
    assert calls[1]["build_args"] == [f"VERSION={short_sha}", "FLAVOUR=slim"]
    # The password went to docker login on stdin only.
    state = Path(docker_shim["DOCKER_SHIM_STATE"])
    assert registry.password not in (state / "calls.jsonl").read_text()
    assert registry.password not in build.output

    delete = project.run_jobs("branch-image:delete")
    assert passed(delete.output, "branch-image:delete"), delete.output
    assert f"deleted: {registry.host}/{APP}:{BRANCH_SLUG} ({pushed})" in delete.output
    assert "by tag only" not in delete.output
    assert registry.tags(APP) == ["main"]
    assert registry.digest(APP, "main") == main_digest
    assert registry.password not in delete.output

    again = project.run_jobs("branch-image:delete")
    assert passed(again.output, "branch-image:delete"), again.output
    assert f"absent: {registry.host}/{APP}:{BRANCH_SLUG}" in again.output
    assert registry.tags(APP) == ["main"]


def test_delete_leaves_a_tag_that_a_newer_pipeline_pushed(
    new_project: NewProject,
    registry: LocalRegistry,
    pusher: ImagePusher,
    docker_shim: dict[str, str],
) -> None:
    project = branch_image_project(new_project, registry, docker_shim, BUILD_INPUTS)
    build = project.run_jobs("branch-image:build")
    assert passed(build.output, "branch-image:build"), build.output
    built = recorded(project)["BRANCH_IMAGE_DIGEST"]
    newer = pusher.push(APP, BRANCH_SLUG, seed="a newer pipeline")
    assert newer != built

    delete = project.run_jobs("branch-image:delete")
    assert passed(delete.output, "branch-image:delete"), delete.output
    assert f"not the expected {built}" in delete.output
    assert registry.digest(APP, BRANCH_SLUG) == newer


def test_delete_without_the_digest_record_deletes_by_tag_and_says_so(
    new_project: NewProject,
    registry: LocalRegistry,
    docker_shim: dict[str, str],
) -> None:
    project = branch_image_project(new_project, registry, docker_shim, BUILD_INPUTS)
    build = project.run_jobs("branch-image:build")
    assert passed(build.output, "branch-image:build"), build.output
    # The record is gone, as when artifacts are erased: the job must still run.
    record = digest_record(project)
    record.unlink()
    assert not list(record.parent.parent.parent.rglob("*.env"))

    delete = project.run_jobs("branch-image:delete")
    assert passed(delete.output, "branch-image:delete"), delete.output
    assert (
        f"no digest recorded by branch-image:build; deleting {registry.host}/{APP}:{BRANCH_SLUG} "
        "by tag only"
    ) in delete.output
    assert f"deleted: {registry.host}/{APP}:{BRANCH_SLUG}" in delete.output
    assert registry.tags(APP) == []


def test_delete_after_pipeline_deletes_in_the_same_pipeline(
    new_project: NewProject,
    registry: LocalRegistry,
    pusher: ImagePusher,
    docker_shim: dict[str, str],
) -> None:
    pusher.push(APP, "main")
    inputs = {**BUILD_INPUTS, "delete_after": "pipeline", "protect": "keep-.* release"}
    project = branch_image_project(new_project, registry, docker_shim, inputs)

    pipeline = project.run("--force-shell-executor")
    assert pipeline.returncode == 0, pipeline.output
    assert passed(pipeline.output, "branch-image:build")
    assert passed(pipeline.output, "branch-image:delete")
    assert f"deleted: {registry.host}/{APP}:{BRANCH_SLUG}" in pipeline.output
    assert [call["command"] for call in shim_calls(docker_shim)][2] == "push"
    assert registry.tags(APP) == ["main"]


def test_protect_and_dry_run_inputs_reach_the_cli(
    new_project: NewProject,
    registry: LocalRegistry,
    pusher: ImagePusher,
    docker_shim: dict[str, str],
) -> None:
    project = new_project("project", **docker_shim)
    project.write_pipeline(
        {
            "stages": ["build"],
            "include": [
                {
                    "component": component("delete-image"),
                    "inputs": {"after": "my-build", "job_prefix": "dry", "dry_run": True},
                },
                {
                    "component": component("delete-image"),
                    "inputs": {"after": "my-build", "job_prefix": "kept", "protect": "feature-.*"},
                },
                {"component": component("delete-image"), "inputs": {"after": "my-build"}},
            ],
            "my-build": {"stage": "build", "script": ["echo the project pushes its own image"]},
        }
    )
    ci_variables_file(project, registry)
    digest = pusher.push(APP, BRANCH_SLUG)

    start = project.run_jobs("delete-image:start")
    assert passed(start.output, "delete-image:start"), start.output
    assert f"{registry.host}/{APP}:{BRANCH_SLUG} is deleted when the environment" in start.output

    dry = project.run_jobs("dry:delete")
    assert passed(dry.output, "dry:delete"), dry.output
    assert f"would-delete: {registry.host}/{APP}:{BRANCH_SLUG} ({digest})" in dry.output
    kept = project.run_jobs("kept:delete")
    assert passed(kept.output, "kept:delete"), kept.output
    assert f"skipped: {registry.host}/{APP}:{BRANCH_SLUG}" in kept.output
    assert registry.digest(APP, BRANCH_SLUG) == digest

    delete = project.run_jobs("delete-image:delete")
    assert passed(delete.output, "delete-image:delete"), delete.output
    assert f"deleted: {registry.host}/{APP}:{BRANCH_SLUG} ({digest})" in delete.output
    assert registry.tags(APP) == []


def test_the_stop_job_keeps_a_report_that_restore_undoes(
    new_project: NewProject,
    registry: LocalRegistry,
    pusher: ImagePusher,
    docker_shim: dict[str, str],
    run_cli: RunCli,
) -> None:
    project = branch_image_project(new_project, registry, docker_shim, BUILD_INPUTS)
    build = project.run_jobs("branch-image:build")
    assert passed(build.output, "branch-image:build"), build.output
    pushed = registry.digest(APP, BRANCH_SLUG)

    delete = project.run_jobs("branch-image:delete")
    assert passed(delete.output, "branch-image:delete"), delete.output
    assert registry.tags(APP) == []
    artifacts = project.directory / ".gitlab-ci-local" / "artifacts"
    (report,) = artifacts.rglob("registry-cleanup-delete.json")
    entry = json.loads(report.read_text())["tags"][0]
    assert (entry["tag"], entry["status"], entry["digest"]) == (BRANCH_SLUG, "deleted", pushed)

    # A wrong stop, undone from the job's artifact.
    restored = run_cli("restore", "--report", str(report), env=ci_env(registry))
    assert restored.returncode == 0, restored.output
    assert registry.digest(APP, BRANCH_SLUG) == pushed
