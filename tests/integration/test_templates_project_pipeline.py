"""The project's own .gitlab-ci.yml in gitlab-ci-local: self-test on branches, release on tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gitlab_ci_local import (
    DEFAULT_BRANCH_PIPELINE,
    FEATURE_BRANCH,
    ROOT,
    TAG_PIPELINE,
    Project,
)
from tests.support.templates import NewProject

SELF_TEST = {
    "self-test:branch-image:build": "on_success",
    "self-test:branch-image:delete": "always",
    "self-test:delete-image:start": "on_success",
    "self-test:delete-image:delete": "manual",
}


@pytest.fixture
def project(new_project: NewProject) -> Project:
    created = new_project()
    created.write_pipeline((ROOT / ".gitlab-ci.yml").read_text())
    return created


def version_tag(tag: str) -> dict[str, str | None]:
    return {**TAG_PIPELINE, "CI_COMMIT_TAG": tag, "CI_COMMIT_REF_NAME": tag}


def test_feature_branch_runs_tests_and_self_tests_with_the_commit_image(project: Project) -> None:
    jobs = project.jobs(FEATURE_BRANCH)
    assert jobs["test"]["stage"] == "test"
    assert {name: jobs[name]["when"] for name in SELF_TEST} == SELF_TEST
    assert "release" not in jobs
    config = project.preview(FEATURE_BRANCH)
    for name in SELF_TEST:
        assert config[name]["stage"] == "self-test"
    for name in ("self-test:branch-image:delete", "self-test:delete-image:delete"):
        image = config[name]["image"]
        assert (image["name"] if isinstance(image, dict) else image) == (
            "$CI_REGISTRY_IMAGE/image:$CI_COMMIT_SHA"
        )


@pytest.mark.parametrize(
    ("variables", "release"),
    [
        pytest.param(DEFAULT_BRANCH_PIPELINE, False, id="default-branch"),
        pytest.param(version_tag("1.4.0"), True, id="version-tag"),
        pytest.param(version_tag("v1.4.0"), False, id="v-prefixed-tag"),
        pytest.param(version_tag("nightly"), False, id="other-tag"),
    ],
)
def test_default_branch_and_tags_get_no_self_test(
    project: Project, variables: dict[str, str | None], release: bool
) -> None:
    jobs = project.jobs(variables)
    assert "test" in jobs
    assert not [name for name in jobs if name.startswith("self-test:")]
    assert ("release" in jobs) is release
    if release:
        assert jobs["release"]["stage"] == "release"


def test_release_publishes_only_the_version_the_package_carries(project: Project) -> None:
    config = project.preview(version_tag("1.4.0"))
    assert config["release"]["release"]["tag_name"] == "$CI_COMMIT_TAG"
    version_file = Path("entrypoint/registry_cleanup/__init__.py")
    version = next(
        line.split('"')[1]
        for line in (ROOT / version_file).read_text().splitlines()
        if line.startswith("__version__ = ")
    )
    (project.directory / version_file).parent.mkdir(parents=True, exist_ok=True)
    (project.directory / version_file).write_text((ROOT / version_file).read_text())
    matching = project.run_jobs("release", variables=version_tag(version))
    assert "PASS  release" in matching.output, matching.output
    other = project.run_jobs("release", variables=version_tag("99.0.0"))
    assert "FAIL  release" in other.output, other.output
    assert f"tag 99.0.0 is not the version in {version_file}" in other.output
