"""The environments as GitLab creates and stops them, and the image every component runs.

- Tier: without `deployment_tier`, GitLab guesses it from the environment's name when it creates
  the environment (app/models/environment.rb, `ensure_environment_tier` / `guess_tier`):
  `branch-images/fix-prod-login` matches /(pr(o|)d|live)/ and becomes a production environment.
  Each successful deployment sets the tier again from the job
  (app/services/deployments/update_environment_service.rb, `renew_deployment_tier`).
- Stop: README and docs/components.md say per `pipelines` mode when GitLab stops the
  environment; the rows must match the template's options and the input descriptions.
- Image: every component's `image_repository` default is where image:promote publishes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.gitlab_ci_local import (
    BRANCH_WITH_OPEN_MERGE_REQUEST,
    FEATURE_BRANCH,
    MERGE_REQUEST_PIPELINE,
    ROOT,
    Project,
    component,
)
from tests.support.templates import NewProject, load_gitlab_yaml, spec_inputs, template_documents

COMPONENTS = sorted(path.stem for path in (ROOT / "templates").glob("*.yml"))
# The project that publishes the image: gitlab.com/registry-cleanup/registry-cleanup, whose
# $CI_REGISTRY_IMAGE is this.
HOME_REGISTRY_IMAGE = "registry.gitlab.com/registry-cleanup/registry-cleanup"
ENVIRONMENT_COMPONENTS = ("branch-image", "delete-image")
README = ROOT / "README.md"
DOC = ROOT / "docs" / "components.md"


def environment_jobs(name: str) -> dict[str, dict[str, Any]]:
    _, body = template_documents(name)
    return {job: spec["environment"] for job, spec in body.items() if "environment" in spec}


@pytest.mark.parametrize("name", ENVIRONMENT_COMPONENTS)
def test_every_environment_declares_the_development_tier(name: str) -> None:
    environments = environment_jobs(name)
    assert environments
    for job, environment in environments.items():
        assert environment.get("deployment_tier") == "development", (name, job)


def test_the_tier_guess_we_avoid_would_be_production() -> None:
    """GitLab's guess_tier, as app/models/environment.rb writes it, on our default names."""
    guesses = [
        ("development", r"(dev|review|trunk)"),
        ("testing", r"(test|tst|int|ac(ce|)pt|qa|qc|control|quality)"),
        ("staging", r"(st(a|)g|mod(e|)l|pre|demo|non)"),
        ("production", r"(pr(o|)d|live)"),
    ]

    def guess(name: str) -> str:
        return next((t for t, p in guesses if re.search(p, name, re.IGNORECASE)), "other")

    assert guess("branch-images/fix-prod-login") == "production"
    assert guess("branch-images/feature-internal-api") == "testing"
    assert guess("self-test/branch-image/feature-x") == "testing"


def test_all_components_share_one_image_repository_default() -> None:
    defaults = {name: spec_inputs(name)["image_repository"]["default"] for name in COMPONENTS}
    assert len(set(defaults.values())) == 1, defaults


def test_image_repository_default_is_where_the_promote_job_publishes() -> None:
    (image_ci,) = load_gitlab_yaml(ROOT / ".gitlab" / "ci" / "image.yml")
    published = image_ci["variables"]["IMAGE_REPOSITORY"]
    assert published.startswith("$CI_REGISTRY_IMAGE")
    promote = image_ci["image:promote"]
    assert promote["script"] == ["sh .gitlab/ci/image-promote.sh"]
    promote_script = (ROOT / ".gitlab" / "ci" / "image-promote.sh").read_text()
    assert "$IMAGE_REPOSITORY:$version" in promote_script
    expected = HOME_REGISTRY_IMAGE + published.removeprefix("$CI_REGISTRY_IMAGE")
    for name in COMPONENTS:
        assert spec_inputs(name)["image_repository"]["default"] == expected, name


# --- When GitLab stops the environment, per `pipelines` mode -------------------------------


def stop_table(text: str, marker: str) -> dict[str, list[str]]:
    table = text.split(marker, 1)[1].split("\n\n", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        mode = re.fullmatch(r"`([a-z_]+)`", cells[0])
        assert mode, line
        rows[mode.group(1)] = cells[1:]
    return rows


@pytest.mark.parametrize("name", ENVIRONMENT_COMPONENTS)
def test_readme_says_per_mode_when_gitlab_stops_the_environment(name: str) -> None:
    options = spec_inputs(name)["pipelines"]["options"]
    readme = stop_table(README.read_text(), "<!-- stops per pipelines mode -->\n")
    doc = stop_table(DOC.read_text(), "<!-- stops per pipelines mode -->\n")
    assert list(readme) == options
    assert list(doc) == options
    # Branch pipelines' deployments have the branch as ref: branch deletion stops them.
    # Merge request pipelines' environments stop when the merge request is merged or closed.
    assert "branch is deleted" in readme["branch"][0]
    # ...and in branch mode a merge or close that keeps the branch stops nothing.
    assert "branch is kept stops nothing" in readme["branch"][0]
    assert "merged or closed" in readme["merge_request"][0]
    assert "sweep" in " ".join(cell for row in readme.values() for cell in row[1:])


@pytest.mark.parametrize("name", ENVIRONMENT_COMPONENTS)
def test_the_pipelines_input_says_per_mode_when_gitlab_stops(name: str) -> None:
    description = " ".join(spec_inputs(name)["pipelines"]["description"].split())
    for mode in spec_inputs(name)["pipelines"]["options"]:
        assert f"`{mode}`" in description
    assert "branch is deleted" in description
    assert "branch is kept stops nothing" in description
    assert "merged or closed" in description
    assert "sweep" in description


def test_no_description_promises_merged_or_closed_in_every_mode() -> None:
    """ "When the merge request is merged or closed" holds for merge request pipelines only."""
    for name in ENVIRONMENT_COMPONENTS:
        for input_name, spec in spec_inputs(name).items():
            text = " ".join(spec["description"].split())
            if input_name != "pipelines" and "merged or closed" in text:
                assert "merge request pipelines" in text, (name, input_name, text)


# --- gitlab-ci-local: names, tiers and stop wiring per mode ---------------------------------

MODES = {
    "branch": {"feature-branch": FEATURE_BRANCH},
    "merge_request": {"merge-request": MERGE_REQUEST_PIPELINE},
    "both": {
        "merge-request": MERGE_REQUEST_PIPELINE,
        "feature-branch": FEATURE_BRANCH,
    },
}
ABSENT = {
    "branch": {"merge-request": MERGE_REQUEST_PIPELINE},
    "merge_request": {"feature-branch": FEATURE_BRANCH},
    "both": {"branch-with-open-merge-request": BRANCH_WITH_OPEN_MERGE_REQUEST},
}


@pytest.fixture
def per_mode_project(new_project: NewProject) -> Project:
    includes = []
    for mode in MODES:
        includes.append(
            {
                "component": component("branch-image"),
                "inputs": {
                    "job_prefix": f"bi-{mode}",
                    "environment_prefix": f"bi-{mode}",
                    "pipelines": mode,
                },
            }
        )
        includes.append(
            {
                "component": component("delete-image"),
                "inputs": {
                    "job_prefix": f"di-{mode}",
                    "environment_prefix": f"di-{mode}",
                    "pipelines": mode,
                    "after": "my-build",
                },
            }
        )
    project = new_project()
    project.write_pipeline(
        {
            "stages": ["build", "clean"],
            "include": includes,
            "my-build": {"stage": "build", "script": ["echo build"]},
        }
    )
    return project


def test_environments_per_mode_in_real_pipelines(per_mode_project: Project) -> None:
    starts = {"bi": ("build", "delete"), "di": ("start", "delete")}
    for mode, pipelines in MODES.items():
        for kind, variables in pipelines.items():
            jobs = per_mode_project.jobs(variables)
            config = per_mode_project.preview(variables)
            for prefix, (start_job, stop_job) in starts.items():
                start, stop = f"{prefix}-{mode}:{start_job}", f"{prefix}-{mode}:{stop_job}"
                assert start in jobs, (mode, kind, sorted(jobs))
                assert stop in jobs, (mode, kind, sorted(jobs))
                started, stopping = config[start]["environment"], config[stop]["environment"]
                name = f"{prefix}-{mode}/$CI_COMMIT_REF_SLUG"
                assert started["name"] == stopping["name"] == name
                assert started["deployment_tier"] == stopping["deployment_tier"] == "development"
                assert started["on_stop"] == stop
                assert stopping["action"] == "stop"
                assert started["auto_stop_in"] == "30 days"
                assert jobs[stop]["when"] == "manual"
    for mode, pipelines in ABSENT.items():
        for kind, variables in pipelines.items():
            jobs = per_mode_project.jobs(variables)
            assert not [job for job in jobs if job.startswith((f"bi-{mode}:", f"di-{mode}:"))], (
                mode,
                kind,
            )
