"""The image's install steps, reproduced in a fresh virtual environment.

As in the Dockerfile: build the wheel from the build context alone, install it without the dev
extra into a venv that has no pip, put regctl on PATH, then run the image's smoke test
(.gitlab/ci/image-smoke.sh) against a real registry. A runtime dependency missing from
pyproject.toml, or a file missing from the build context, fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.local_registry import LocalRegistry

# Installs the package into a fresh venv:
# `./dev test --quick` leaves this module out (the slow marker, tests/conftest.py).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / ".gitlab/ci/image-smoke.sh"


def context_paths() -> list[str]:
    """The paths .dockerignore lets into the build context."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def run(*args: str | Path, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run(
        [str(a) for a in args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel and its runtime dependencies only; returns the venv directory."""
    work = tmp_path_factory.mktemp("image-install")
    context = work / "context"
    for name in context_paths():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    wheels = work / "wheels"
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, context)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("registry_cleanup-*.whl")

    venv = work / "venv"
    created = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert created.returncode == 0, created.stderr
    installed = run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        venv / "bin/python",
        "install",
        "-q",
        "--no-compile",
        wheel,
    )
    assert installed.returncode == 0, installed.stderr
    return venv


@pytest.fixture
def image_env(fresh_install: Path, regctl_binary: str) -> dict[str, str]:
    """Only the fresh venv and regctl on PATH, as in the image; no CI variables."""
    path = f"{fresh_install / 'bin'}:{Path(regctl_binary).parent}:/usr/bin:/bin"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}


def test_the_venv_has_no_dev_extra_and_no_pip(fresh_install):
    python = fresh_install / "bin/python"
    for module in ("pip", "pytest", "ruff", "mypy", "hypothesis"):
        probe = run(python, "-c", f"import {module}")
        assert probe.returncode != 0, f"{module} is installed in the runtime venv"
    assert not list(fresh_install.rglob("*.pyc")), "the install compiled .pyc files"


def test_registry_cleanup_reports_the_project_version(image_env):
    # pyproject.toml takes its version from the package (hatch dynamic version).
    init = (ROOT / "entrypoint/registry_cleanup/__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', init, re.M)
    assert match is not None
    version = match.group(1)
    result = run("registry-cleanup", "--version", env=image_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"registry-cleanup {version}"


def test_the_image_smoke_test_passes_against_a_real_registry(image_env, registry: LocalRegistry):
    env = {
        **image_env,
        "SMOKE_REGISTRY": registry.host,
        "SMOKE_TLS": "disabled",
        "SMOKE_USERNAME": registry.username,
        "SMOKE_PASSWORD": registry.password,
    }
    result = run("sh", SMOKE, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VCSTag:" in result.stdout  # regctl version printed its table
    assert "smoke: ok" in result.stdout
    # Checked from outside too: exactly the one tag is gone.
    assert registry.tags("smoke/registry-cleanup") == ["keep-smoke"]
    assert registry.password not in result.stdout + result.stderr


def test_the_smoke_test_fails_when_the_delete_cannot_happen(
    image_env, registry_no_deletes: LocalRegistry
):
    # The control: the same script against a registry that refuses deletes must not pass.
    env = {
        **image_env,
        "SMOKE_REGISTRY": registry_no_deletes.host,
        "SMOKE_USERNAME": registry_no_deletes.username,
        "SMOKE_PASSWORD": registry_no_deletes.password,
    }
    result = run("sh", SMOKE, env=env)
    assert result.returncode != 0
    assert "smoke: ok" not in result.stdout
    assert "feature-smoke" in registry_no_deletes.tags("smoke/registry-cleanup")
