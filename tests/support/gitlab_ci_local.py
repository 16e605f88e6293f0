"""Run the real gitlab-ci-local against a throwaway copy of this project.

GitLab resolves ``include: component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/NAME@$CI_COMMIT_SHA`` from
the project's own repository; gitlab-ci-local 4.73.0 does the same, locally, when the project
path matches the git remote and the ref is the checked-out commit. So each test project is a git
repository whose remote is ``gitlab.example.com:group/registry-cleanup`` with ``templates/``
committed, and the pipeline under test includes the components exactly as users and the
project's own .gitlab-ci.yml do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devkit.local_registry import registry_environment

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PATH = "group/registry-cleanup"
SERVER = "gitlab.example.com"
BRANCH = "feature/Login-Form"
BRANCH_SLUG = "feature-login-form"
DEFAULT_BRANCH = "main"


def component(name: str) -> str:
    """The include address the project's own pipeline uses for its components."""
    return f"$CI_SERVER_FQDN/$CI_PROJECT_PATH/{name}@$CI_COMMIT_SHA"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# The pipeline contexts the tests list jobs for: what GitLab sets in each kind of pipeline.
# (gitlab-ci-local derives the branch variables from the checked-out branch.)
FEATURE_BRANCH: dict[str, str | None] = {}
DEFAULT_BRANCH_PIPELINE: dict[str, str | None] = {
    "CI_COMMIT_BRANCH": DEFAULT_BRANCH,
    "CI_COMMIT_REF_NAME": DEFAULT_BRANCH,
    "CI_COMMIT_REF_SLUG": DEFAULT_BRANCH,
}
TAG_PIPELINE: dict[str, str | None] = {
    "CI_COMMIT_TAG": "1.4.0",
    "CI_COMMIT_REF_NAME": "1.4.0",
    "CI_COMMIT_REF_SLUG": "1-4-0",
    "CI_COMMIT_BRANCH": None,
}
MERGE_REQUEST_PIPELINE: dict[str, str | None] = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_IID": "7",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": BRANCH,
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": DEFAULT_BRANCH,
    "CI_COMMIT_BRANCH": None,
}
BRANCH_WITH_OPEN_MERGE_REQUEST: dict[str, str | None] = {
    "CI_OPEN_MERGE_REQUESTS": f"{PROJECT_PATH}!7",
}


class Project:
    """A git checkout of the components plus a .gitlab-ci.yml, driven by gitlab-ci-local."""

    def __init__(self, directory: Path, executable: str, env: Mapping[str, str] | None = None):
        self.directory = directory
        self._executable = executable
        # Nothing of the job running this suite (GitLab's CI_* variables, say) may leak into the
        # pipelines under test: they get only the variables each test sets.
        inherited = {
            name: value
            for name, value in registry_environment().items()
            if name != "CI" and not name.startswith("GITLAB_")
        }
        self._env = {**inherited, **(env or {})}

    @classmethod
    def create(
        cls, directory: Path, executable: str, *, env: Mapping[str, str] | None = None
    ) -> Project:
        directory.mkdir(parents=True)
        shutil.copytree(ROOT / "templates", directory / "templates")
        # The project's own pipeline includes the image jobs (and their scripts) from here.
        shutil.copytree(ROOT / ".gitlab", directory / ".gitlab")
        git = ["git", "-C", str(directory), "-c", "user.name=test", "-c", "user.email=t@example"]
        subprocess.run([*git, "init", "-q", "-b", BRANCH], check=True)
        subprocess.run(
            [*git, "remote", "add", "origin", f"git@{SERVER}:{PROJECT_PATH}.git"], check=True
        )
        subprocess.run([*git, "add", "templates", ".gitlab"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "components"], check=True)
        # What a clone of a GitLab project has: origin/HEAD naming the default branch.
        subprocess.run([*git, "update-ref", f"refs/remotes/origin/{DEFAULT_BRANCH}", "HEAD"])
        subprocess.run(
            [
                *git,
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                f"refs/remotes/origin/{DEFAULT_BRANCH}",
            ],
            check=True,
        )
        return cls(directory, executable, env)

    def write_pipeline(self, config: Mapping[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
        (self.directory / ".gitlab-ci.yml").write_text(text)

    def run(self, *args: str, variables: Mapping[str, str | None] | None = None) -> Run:
        argv = [self._executable, *args]
        overridden = [name for name in variables or {} if name.startswith("CI_")]
        if overridden:
            # Setting GitLab's own variables is the point here: no warning on stdout, please.
            argv += ["--ignore-predefined-vars", ",".join(overridden)]
        for name, value in (variables or {}).items():
            argv += (
                ["--unset-variable", name] if value is None else ["--variable", f"{name}={value}"]
            )
        completed = subprocess.run(
            argv,
            cwd=self.directory,
            env=self._env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Run(completed.returncode, completed.stdout, completed.stderr)

    def jobs(self, variables: Mapping[str, str | None] | None = None) -> dict[str, dict[str, Any]]:
        """The jobs a pipeline with these variables gets (when: never left out), by name."""
        run = self.run("--list-json", variables=variables)
        assert run.returncode == 0, run.output
        listed: list[dict[str, Any]] = json.loads(run.stdout)
        return {job["name"]: job for job in listed if job["when"] != "never"}

    def preview(self, variables: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        """The merged configuration (includes, extends and !reference expanded)."""
        run = self.run("--preview", variables=variables)
        assert run.returncode == 0, run.output
        documents = [d for d in yaml.safe_load_all(run.stdout) if isinstance(d, dict)]
        merged: dict[str, Any] = {}
        for document in documents:
            merged.update(document)
        return merged

    def run_jobs(
        self,
        *jobs: str,
        variables: Mapping[str, str | None] | None = None,
        extra: Sequence[str] = (),
    ) -> Run:
        """Run jobs for real in the shell (jobs name images; no container engine is here)."""
        return self.run("--force-shell-executor", *extra, *jobs, variables=variables)
