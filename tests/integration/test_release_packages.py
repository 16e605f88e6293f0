"""The release's package jobs in .gitlab-ci.yml, in gitlab-ci-local: listed, then run for real.

package:build, package:pypi and package:gitlab exist in version-tag pipelines only. Run with
--force-shell-executor, they build the wheel and the sdist from a copy of this checkout and
upload them with the real twine to a package index on loopback (tests/support/package_index.py)
that answers as PyPI's trusted publishing and GitLab's PyPI API do. The jobs' own
`pip install` of build and twine is switched off: the dev extras pin the same versions. The ID
token and the job token reach the jobs through gitlab-ci-local's variables file, as GitLab's
job variables; neither they nor the API token PyPI mints may show in the job logs or in any
process's argv.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.gitlab_ci_local import (
    DEFAULT_BRANCH_PIPELINE,
    FEATURE_BRANCH,
    ROOT,
    TAG_PIPELINE,
    Project,
)
from tests.support.package_index import PackageIndex, Upload
from tests.support.proc_sampler import ProcSampler, Sample
from tests.support.templates import NewProject

# Builds and publishes the packages through gitlab-ci-local:
# `./dev test --quick` leaves this module out (the slow marker, tests/conftest.py).
pytestmark = pytest.mark.slow

PACKAGE_JOBS = ("package:build", "package:pypi", "package:gitlab")
PROJECT_ID = 4242
# What the package build reads: the build context the image is built from, too.
SOURCES = ("pyproject.toml", "README.md", "entrypoint")


def version_tag(tag: str) -> dict[str, str | None]:
    return {**TAG_PIPELINE, "CI_COMMIT_TAG": tag, "CI_COMMIT_REF_NAME": tag}


def release_pipeline(index: PackageIndex, tag: str) -> dict[str, str | None]:
    """A version tag's pipeline on the GitLab the local index stands for (no secrets here)."""
    return {
        **version_tag(tag),
        "CI_API_V4_URL": index.gitlab_api_url,
        "CI_PROJECT_ID": str(PROJECT_ID),
    }


def project_version() -> str:
    init = (ROOT / "entrypoint/registry_cleanup/__init__.py").read_text()
    return next(line.split('"')[1] for line in init.splitlines() if line.startswith("__version__"))


def pipeline() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    return loaded


# -- which pipelines get them, and how they are wired ----------------------------------------


@pytest.fixture
def listed(new_project: NewProject) -> Project:
    created = new_project()
    created.write_pipeline((ROOT / ".gitlab-ci.yml").read_text())
    return created


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(FEATURE_BRANCH, False, id="feature-branch"),
        pytest.param(DEFAULT_BRANCH_PIPELINE, False, id="default-branch"),
        pytest.param(version_tag("1.4.0"), True, id="version-tag"),
        pytest.param(version_tag("v1.4.0"), False, id="v-prefixed-tag"),
    ],
)
def test_package_jobs_run_in_version_tag_pipelines_only(
    listed: Project, variables: dict[str, str | None], expected: bool
):
    jobs = listed.jobs(variables)
    present = [name for name in PACKAGE_JOBS if name in jobs]
    assert present == (list(PACKAGE_JOBS) if expected else [])
    if expected:
        # The same tags the release job publishes the components for.
        assert "release" in jobs
        assert jobs["package:build"]["stage"] == "build"
        assert jobs["package:pypi"]["stage"] == jobs["package:gitlab"]["stage"] == "release"


def test_uploads_wait_for_the_promoted_image_and_use_no_stored_secret(listed: Project):
    config = listed.preview(version_tag("1.4.0"))
    for name in ("package:pypi", "package:gitlab"):
        # image:promote runs only when every earlier stage passed; the files come from the build.
        needs = {n["job"] if isinstance(n, dict) else n for n in config[name]["needs"]}
        assert needs == {"package:build", "image:promote"}, name
    pypi = config["package:pypi"]
    assert pypi["id_tokens"] == {"PYPI_ID_TOKEN": {"aud": "pypi"}}
    assert "TWINE_PASSWORD" not in pypi.get("variables", {}), "a stored PyPI token"
    assert pypi["variables"]["PYPI_MINT_TOKEN_URL"] == "https://pypi.org/_/oidc/mint-token"
    assert pypi["variables"]["PYPI_UPLOAD_URL"] == "https://upload.pypi.org/legacy/"
    gitlab = config["package:gitlab"]
    assert gitlab["variables"] == {
        "TWINE_USERNAME": "gitlab-ci-token",
        "TWINE_PASSWORD": "$CI_JOB_TOKEN",
    }
    # Credentials reach twine through the environment, never as options on its command line.
    for name in PACKAGE_JOBS:
        script = "\n".join(config[name]["script"])
        for option in ("-p ", "--password", "-u ", "--username"):
            assert option not in script, (name, option)


def test_the_jobs_install_the_tool_versions_the_tests_run():
    installed = pipeline()[".package"]["before_script"]
    pins = set(re.findall(r'"((?:build|twine)==[^"]+)"', " ".join(installed)))
    with (ROOT / "pyproject.toml").open("rb") as stream:
        dev = tomllib.load(stream)["project"]["optional-dependencies"]["dev"]
    dev_venv = {f"{tool}=={importlib.metadata.version(tool)}" for tool in ("build", "twine")}
    assert pins == dev_venv
    assert pins <= set(dev)


# -- run for real ----------------------------------------------------------------------------


@pytest.fixture
def index() -> Iterator[PackageIndex]:
    with PackageIndex(
        trusted_id_token="eyJ.id-token." + secrets.token_urlsafe(16),
        gitlab_project_id=PROJECT_ID,
        gitlab_job_token="glcbt-" + secrets.token_urlsafe(16),
    ) as running:
        yield running


def secrets_file(project: Project, index: PackageIndex, id_token: str) -> None:
    """What GitLab gives the jobs, as gitlab-ci-local's variables file (kept out of argv)."""
    variables = {
        "PYPI_ID_TOKEN": id_token,  # what id_tokens: makes GitLab set
        "CI_JOB_TOKEN": index.gitlab_job_token,
        # Project variables override the job's: PyPI's endpoints become the local index's.
        "PYPI_MINT_TOKEN_URL": index.mint_token_url,
        "PYPI_UPLOAD_URL": index.pypi_upload_url,
    }
    (project.directory / ".gitlab-ci-local-variables.yml").write_text(json.dumps(variables))


@pytest.fixture
def release_project(new_project: NewProject) -> Project:
    # The dev venv's python (with build and twine) first on PATH, as the job image's would be.
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    project = new_project(PATH=path)
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, project.directory / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, project.directory / name)
    config = pipeline()
    config[".package"]["before_script"] = []
    project.write_pipeline(config)
    git = ["git", "-C", str(project.directory), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run([*git, "add", *SOURCES, ".gitlab-ci.yml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "sources"], check=True)
    return project


def local_dists(project: Project) -> dict[str, str]:
    """File name -> sha256 of what package:build left in dist/ (its artifact, copied back)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (project.directory / "dist").iterdir()
    }


def argv_holding(samples: list[Sample], *values: str) -> list[tuple[str, ...]]:
    return [s.cmdline for s in samples if any(v in " ".join(s.cmdline) for v in values)]


def test_a_version_tag_publishes_both_files_to_pypi_and_gitlab(
    release_project: Project, index: PackageIndex
):
    version = project_version()
    secrets_file(release_project, index, index.trusted_id_token)
    with (
        ProcSampler(sys.executable, interval=0.005) as pythons,
        ProcSampler(shutil.which("bash") or "/bin/bash", interval=0.005) as shells,
    ):
        run = release_project.run_jobs(*PACKAGE_JOBS, variables=release_pipeline(index, version))

    for name in PACKAGE_JOBS:
        assert f"PASS  {name}" in run.output, run.output
    built = local_dists(release_project)
    assert sorted(built) == [
        f"registry_cleanup-{version}-py3-none-any.whl",
        f"registry_cleanup-{version}.tar.gz",
    ]
    # PyPI: the ID token traded once, then both files under the minted token.
    assert index.mint_requests == [{"token": index.trusted_id_token}]
    by_index: dict[str, dict[str, Upload]] = {"pypi": {}, "gitlab": {}}
    for upload in index.uploads:
        by_index[upload.index][upload.filename] = upload
    for name, uploads in by_index.items():
        assert {f: u.sha256 for f, u in uploads.items()} == built, name
        for upload in uploads.values():
            assert upload.content_sha256 == upload.sha256
            assert (upload.name, upload.version) == ("registry-cleanup", version)
    assert {(u.username, u.password) for u in by_index["pypi"].values()} == {
        ("__token__", index.minted_token)
    }
    assert {(u.username, u.password) for u in by_index["gitlab"].values()} == {
        ("gitlab-ci-token", index.gitlab_job_token)
    }
    # No secret in the job logs, nor on any command line while the jobs ran.
    secret_values = (index.trusted_id_token, index.minted_token, index.gitlab_job_token)
    for value in secret_values:
        assert value not in run.output
    assert argv_holding(pythons.samples, "twine"), "the sampler never saw twine run"
    assert not argv_holding(pythons.samples + shells.samples, *secret_values)


def test_pypi_refusing_the_id_token_uploads_nothing_and_says_why(
    release_project: Project, index: PackageIndex
):
    # An ID token PyPI has no trusted publisher for: another project, file or environment.
    untrusted = "eyJ.other-project." + secrets.token_urlsafe(16)
    secrets_file(release_project, index, untrusted)
    run = release_project.run_jobs(
        "package:build", "package:pypi", variables=release_pipeline(index, project_version())
    )
    assert "FAIL  package:pypi" in run.output, run.output
    assert "PyPI refused the ID token (HTTP 422)" in run.output
    assert "invalid-publisher" in run.output
    assert index.mint_requests == [{"token": untrusted}]
    assert index.uploads == []
    assert untrusted not in run.output


def test_a_tag_that_is_not_the_package_version_publishes_nothing(
    release_project: Project, index: PackageIndex
):
    secrets_file(release_project, index, index.trusted_id_token)
    run = release_project.run_jobs(*PACKAGE_JOBS, variables=release_pipeline(index, "99.0.0"))
    assert "FAIL  package:build" in run.output, run.output
    assert "tag 99.0.0 is not the version the packages carry" in run.output
    assert index.mint_requests == []
    assert index.uploads == []
