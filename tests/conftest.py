"""Shared fixtures: real tools and a real registry, or a loud failure under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, find_registry_binary, registry_environment

ROOT = Path(__file__).resolve().parent.parent
# The GitLab API emulator's fixtures (gitlab_emulator), and those of the component tests
# (gitlab-ci-local projects), kept next to their helpers. One list: a second assignment would
# silently drop the first.
pytest_plugins = ["tests.fakes.fixtures", "tests.support.templates"]


def require_tool(name: str, found: str | None) -> str:
    """Return the tool's path; without it fail under CI, skip elsewhere."""
    if found:
        return found
    message = f"{name} is not installed; run ./dev setup"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: a missing tool is a failure)")
    pytest.skip(f"{message} (CI is unset, so this is a skip)")


def find_tool(name: str) -> str | None:
    """The project's own install first (.venv/bin, .tools/bin), then PATH."""
    for directory in (Path(sys.executable).parent, ROOT / ".tools" / "bin"):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


@pytest.fixture(scope="session")
def regctl_binary() -> str:
    return require_tool("regctl", find_tool("regctl"))


@pytest.fixture(scope="session")
def registry_binary() -> str:
    return require_tool("docker-registry", find_registry_binary())


@pytest.fixture
def registry(tmp_path: Path, registry_binary: str) -> Iterator[LocalRegistry]:
    """A fresh registry with deletes enabled and htpasswd auth."""
    with LocalRegistry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
def registry_no_deletes(tmp_path: Path, registry_binary: str) -> Iterator[LocalRegistry]:
    """A fresh registry that answers 405 UNSUPPORTED to every delete."""
    with LocalRegistry(tmp_path / "registry-no-deletes", deletes_enabled=False) as running:
        yield running


@pytest.fixture
def pusher(registry: LocalRegistry, regctl_binary: str) -> Iterator[ImagePusher]:
    with ImagePusher(registry, regctl_binary) as images:
        yield images


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(regctl_binary: str) -> RunCli:
    """Run the installed ``registry-cleanup`` command as a user would: a real process."""
    command = require_tool("registry-cleanup", find_tool("registry-cleanup"))

    def run(
        *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> CliResult:
        completed = subprocess.run(
            [command, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={
                **registry_environment(),
                "REGISTRY_CLEANUP_REGCTL": regctl_binary,
                **(env or {}),
            },
            timeout=120,
            check=False,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run


def ci_env(registry: LocalRegistry, **extra: str) -> dict[str, str]:
    """The variables GitLab gives a job, pointed at a local registry."""
    return {
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_IMAGE": f"{registry.host}/group/app",
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "CI_DEFAULT_BRANCH": "main",
        "REGISTRY_CLEANUP_TLS": "disabled",
        **extra,
    }
