"""Which jobs the components add to which pipelines, and how the stop job is wired.

Real gitlab-ci-local runs (--list-json, --preview) on one pipeline that includes the components
several times with different inputs, so one run per pipeline kind checks every variant.
gitlab-ci-local does not check environment/on_stop wiring; the tests here do.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gitlab_ci_local import (
    BRANCH_WITH_OPEN_MERGE_REQUEST,
    DEFAULT_BRANCH_PIPELINE,
    FEATURE_BRANCH,
    MERGE_REQUEST_PIPELINE,
    TAG_PIPELINE,
    Project,
    component,
)
from tests.support.templates import NewProject, template_documents

# One include per variant: job prefix -> (component, inputs).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "branch-image": ("branch-image", {}),
    "on-mr": ("branch-image", {"pipelines": "merge_request", "delete_after": "pipeline"}),
    "both": ("branch-image", {"pipelines": "both", "delete_after": "never"}),
    "pipeline": ("branch-image", {"delete_after": "pipeline", "auto_stop_in": "2 weeks"}),
    "delete-image": ("delete-image", {"after": "my-build", "auto_stop_in": "1 day"}),
}


def pipeline_config() -> dict[str, Any]:
    includes = []
    for prefix, (name, inputs) in VARIANTS.items():
        entry: dict[str, Any] = {"component": component(name)}
        all_inputs = {**inputs, "job_prefix": prefix} if prefix != name else inputs
        if all_inputs:
            entry["inputs"] = all_inputs
        includes.append(entry)
    return {
        "stages": ["build", "clean"],
        "include": includes,
        # The project's own build job, which delete-image follows.
        "my-build": {"stage": "build", "script": ["echo build"]},
    }


@pytest.fixture
def project(new_project: NewProject) -> Project:
    created = new_project()
    created.write_pipeline(pipeline_config())
    return created


FEATURE_JOBS = {
    "my-build": "on_success",
    "branch-image:build": "on_success",
    "branch-image:delete": "manual",
    "both:build": "on_success",
    "pipeline:build": "on_success",
    "pipeline:delete": "always",
    "delete-image:start": "on_success",
    "delete-image:delete": "manual",
}


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(FEATURE_BRANCH, FEATURE_JOBS, id="feature-branch"),
        pytest.param(DEFAULT_BRANCH_PIPELINE, {"my-build": "on_success"}, id="default-branch"),
        pytest.param(TAG_PIPELINE, {"my-build": "on_success"}, id="tag"),
        pytest.param(
            MERGE_REQUEST_PIPELINE,
            {
                "my-build": "on_success",
                "on-mr:build": "on_success",
                "on-mr:delete": "always",
                "both:build": "on_success",
            },
            id="merge-request",
        ),
        pytest.param(
            BRANCH_WITH_OPEN_MERGE_REQUEST,
            {name: when for name, when in FEATURE_JOBS.items() if not name.startswith("both:")},
            id="branch-with-open-merge-request",
        ),
    ],
)
def test_jobs_per_pipeline_kind(
    project: Project, variables: dict[str, str | None], expected: dict[str, str]
) -> None:
    jobs = project.jobs(variables)
    assert {name: job["when"] for name, job in jobs.items()} == expected
    # A stop job waiting for its environment must not block the pipeline.
    for name, job in jobs.items():
        if job["when"] == "manual":
            assert job["allow_failure"] is True, name


def _exclusions(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for rule in rules if rule.get("when") == "never" and "if" in rule]


START_JOBS = {
    "branch-image:build": ("branch-image:delete", "30 days"),
    "pipeline:build": ("pipeline:delete", None),
    "delete-image:start": ("delete-image:delete", "1 day"),
}


def test_stop_jobs_are_wired_to_their_environments(project: Project) -> None:
    config = project.preview()
    listed = project.jobs()
    for start_name, (stop_name, auto_stop_in) in START_JOBS.items():
        start, stop = config[start_name], config[stop_name]
        environment = start["environment"]
        assert environment["name"] == stop["environment"]["name"]
        assert environment["name"].endswith("/$CI_COMMIT_REF_SLUG")
        assert environment.get("action", "start") == "start"
        assert environment["on_stop"] == stop_name
        assert environment.get("auto_stop_in") == auto_stop_in
        assert stop["environment"]["action"] == "stop"
        assert stop["variables"]["GIT_STRATEGY"] == "none"
        # GitLab creates the stop job only where the start job exists: same exclusions, and
        # the stop job either shares the stage or needs the start job.
        assert _exclusions(stop["rules"]) == _exclusions(start["rules"])
        assert len(_exclusions(start["rules"])) >= 5
        needs = [need["job"] for need in stop.get("needs", [])]
        assert stop["stage"] == start["stage"] or start_name in needs
        # Both are in the feature branch pipeline, so the wiring is live there.
        assert start_name in listed
        assert stop_name in listed
    assert listed["branch-image:delete"]["when"] == "manual"
    assert listed["delete-image:delete"]["when"] == "manual"
    # delete_after: never starts no environment, so nothing would be stopped.
    assert "environment" not in config["both:build"]


def test_delete_job_reads_the_recorded_digest_without_requiring_it(project: Project) -> None:
    config = project.preview()
    build, delete = config["branch-image:build"], config["branch-image:delete"]
    assert build["artifacts"]["reports"]["dotenv"] == "branch-image.env"
    assert build["artifacts"]["expire_in"] == "never"
    assert {"job": "branch-image:build", "artifacts": True}.items() <= delete["needs"][0].items()
    script = "\n".join(delete["script"])
    assert 'REGISTRY_CLEANUP_EXPECT_DIGEST="$BRANCH_IMAGE_DIGEST"' in script
    assert "by tag only" in script
    # The delete job runs our image; the default is the release of the same component version.
    assert delete["image"] in (
        "$REGISTRY_CLEANUP_RELEASED_IMAGE",
        {"name": "$REGISTRY_CLEANUP_RELEASED_IMAGE"},
    )
    released = delete["variables"]["REGISTRY_CLEANUP_RELEASED_IMAGE"]
    assert released.startswith("registry.gitlab.com/registry-cleanup/registry-cleanup/image:")


def test_build_job_uses_docker_in_docker_by_default(project: Project) -> None:
    build = project.preview()["branch-image:build"]
    assert build["image"] in ("docker:28", {"name": "docker:28"})
    services = [s["name"] if isinstance(s, dict) else s for s in build["services"]]
    assert services == ["docker:28-dind"]
    assert build["variables"]["BRANCH_IMAGE_REF"] == "$CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG"


def test_both_templates_share_the_same_pipeline_rules() -> None:
    _, branch_image = template_documents("branch-image")
    _, delete_image = template_documents("delete-image")
    key = ".registry-cleanup:pipelines"
    assert branch_image[key] == delete_image[key]


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("branch-image", {"delete_after": "later"}, "not in the list of allowed options"),
        ("branch-image", {"pipelines": "tags"}, "not in the list of allowed options"),
        ("branch-image", {"dry_run": "yes"}, "not a boolean"),
        ("branch-image", {"auto_stop_in": "soon!"}, "does not match required regex"),
        ("delete-image", {}, "`after` input: required value has not been provided"),
    ],
)
def test_bad_inputs_are_rejected(
    new_project: NewProject, name: str, inputs: dict[str, Any], message: str
) -> None:
    project = new_project()
    include: dict[str, Any] = {"component": component(name)}
    if inputs:
        include["inputs"] = inputs
    project.write_pipeline({"stages": ["build", "clean"], "include": [include]})
    run = project.run("--list")
    assert run.returncode != 0
    assert message in run.output
    assert f"templates/{name}.yml" in run.output
