"""Run the real gitlab-ci-local against a throwaway copy of this project.

GitLab resolves ``include: component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/NAME@$CI_COMMIT_SHA`` from
the project's own repository; gitlab-ci-local 4.73.0 does the same, locally, when the project
path matches the git remote and the ref is the checked-out commit. So each test project is a git
repository whose remote is ``gitlab.example.com:group/registry-cleanup`` with ``templates/``
committed, and the pipeline under test includes the components exactly as users and the
project's own .gitlab-ci.yml do.
"""

from __future__ import annotations

import hashlib
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


# What a component's include address reads: it picks the files the merged configuration holds.
INCLUDE_ADDRESS_VARIABLES = ("CI_SERVER_FQDN", "CI_PROJECT_PATH", "CI_COMMIT_SHA")


class SchemaChecked:
    """The configurations gitlab-ci-local has already checked against GitLab's CI schema.

    gitlab-ci-local checks the merged configuration (includes, extends and inputs expanded)
    against GitLab's JSON schema before every command, and that check is about half of each
    run's CPU time (test_templates_pipelines: 24.8 CPU-s with it, 13.6 without). The merged
    configuration is made from the files alone: the committed tree (components resolve at
    $CI_COMMIT_SHA), the working tree's .gitlab-ci.yml and local includes, and the include
    address's variables; no include here has rules, and other variables stay text in it. So
    each distinct configuration is checked by its first run in the test session (all pytest
    workers share the directory) and not again once a run with the check passed.
    """

    def __init__(self, directory: Path):
        self.directory = directory

    def key(self, project: Path, variables: Mapping[str, str | None]) -> str:
        digest = hashlib.sha256()
        tree = subprocess.run(
            ["git", "-C", str(project), "rev-parse", "HEAD^{tree}"],
            capture_output=True,
            text=True,
            check=False,
        )
        digest.update(tree.stdout.encode())
        files = [project / ".gitlab-ci.yml", *sorted((project / ".gitlab").rglob("*"))]
        for path in (p for p in files if p.is_file()):
            digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
        for name in INCLUDE_ADDRESS_VARIABLES:
            digest.update(f"{name}={variables.get(name, '')}\0".encode())
        return digest.hexdigest()

    def has(self, key: str) -> bool:
        return (self.directory / key).exists()

    def add(self, key: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / key).touch()


class Project:
    """A git checkout of the components plus a .gitlab-ci.yml, driven by gitlab-ci-local."""

    def __init__(
        self,
        directory: Path,
        executable: str,
        env: Mapping[str, str] | None = None,
        schema_checked: SchemaChecked | None = None,
    ):
        self.directory = directory
        self._executable = executable
        self._schema_checked = schema_checked
        # Nothing of the job running this suite (GitLab's CI_* variables, say) may leak into the
        # pipelines under test: they get only the variables each test sets.
        inherited = {
            name: value
            for name, value in registry_environment().items()
            if name != "CI" and not name.startswith("GITLAB_")
        }
        # Nor the machine's home: Debian's bash reads ~/.bashrc when its stdin is a socket, as
        # gitlab-ci-local's job shells' can be, and a ~/.bashrc that runs `pyenv init` put
        # pyenv's python before the one a test put first on PATH (seen in full runs here).
        home = directory.with_name(f"{directory.name}-home")
        home.mkdir(parents=True, exist_ok=True)
        self._env = {**inherited, "HOME": str(home), **(env or {})}

    @classmethod
    def create(
        cls,
        directory: Path,
        executable: str,
        *,
        env: Mapping[str, str] | None = None,
        schema_checked: SchemaChecked | None = None,
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
        return cls(directory, executable, env, schema_checked)

    def write_pipeline(self, config: Mapping[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
        (self.directory / ".gitlab-ci.yml").write_text(text)

    def run(self, *args: str, variables: Mapping[str, str | None] | None = None) -> Run:
        checked = self._schema_checked
        key = checked.key(self.directory, variables or {}) if checked else ""
        check_schema = checked is None or not checked.has(key)
        argv = [self._executable, f"--json-schema-validation={str(check_schema).lower()}", *args]
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
        if checked is not None and check_schema and completed.returncode == 0:
            checked.add(key)
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
