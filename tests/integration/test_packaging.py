"""What PyPI gets, and what `pipx install registry-cleanup` gives a terminal user.

The wheel and the sdist are built once per session with `python -m build`, as the release
pipeline's package:build job builds them, and checked as PyPI would take them: twine's check,
the files in each, the metadata. Then the wheel goes into a fresh venv outside the checkout, which
is what pipx makes, and the installed command runs with only that venv and /usr/bin on PATH: no
checkout on sys.path and no regctl, as on a terminal user's machine. It prints its version and
help, completes in bash and zsh, and runs a dry-run sweep against the GitLab API emulator.
"""

from __future__ import annotations

import email.parser
import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from tests.conftest import require_tool
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.support.templates import spec_inputs

# Builds the sdist and wheel and installs them:
# `./dev test --quick` leaves this module out (the slow marker, tests/conftest.py).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "entrypoint/registry_cleanup"
HOME = "https://gitlab.com/registry-cleanup/registry-cleanup"
# The directories of the checkout that must never ship in a package.
NOT_SHIPPED = ("tests", "bench", "devkit", "templates", "docs", "scripts", ".gitlab")
# Where a terminal user's machine has its own tools; the venv's bin goes first.
SYSTEM_PATH = "/usr/bin:/bin"


def project_version() -> str:
    """__version__, the one place the version is written (hatch reads it from there too)."""
    match = re.search(r'^__version__ = "([^"]+)"$', (PACKAGE / "__init__.py").read_text(), re.M)
    assert match is not None
    return match.group(1)


def templates() -> list[str]:
    """Every component: each names the image it runs by default."""
    return sorted(path.stem for path in (ROOT / "templates").glob("*.yml"))


def run(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """`python -m build`: the sdist, then the wheel built from that sdist, as CI builds them."""
    require_tool("build (python -m build)", "build" if importlib.util.find_spec("build") else None)
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=out)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dists(wheel, sdist)


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


# -- what PyPI takes -------------------------------------------------------------------------


def test_twine_check_passes(dists: Dists):
    require_tool("twine", "twine" if importlib.util.find_spec("twine") else None)
    # --strict: a README PyPI would not render as Markdown fails too, not only a missing field.
    checked = run(sys.executable, "-m", "twine", "check", "--strict", dists.wheel, dists.sdist)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_the_wheel_holds_the_package_only(dists: Dists):
    version = project_version()
    with zipfile.ZipFile(dists.wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"registry_cleanup", f"registry_cleanup-{version}.dist-info"}
    # Every module of the package is there, and nothing else of the checkout.
    modules = {
        "registry_cleanup/" + str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    shipped = {n for n in names if n.startswith("registry_cleanup/")}
    assert shipped == modules


def test_the_sdist_holds_what_the_wheel_is_built_from(dists: Dists):
    root = f"registry_cleanup-{project_version()}/"
    with tarfile.open(dists.sdist) as archive:
        names = [m.name.removeprefix(root) for m in archive.getmembers() if m.isfile()]
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= set(names)
    outside = [n for n in names if "/" in n and not n.startswith("entrypoint/registry_cleanup/")]
    assert not outside, f"the sdist carries more than the package: {outside[:10]}"
    assert not [n for n in names if n.split("/")[0] in NOT_SHIPPED]


def test_metadata_names_the_version_home_and_tested_pythons(dists: Dists):
    metadata = wheel_metadata(dists.wheel)
    assert metadata["Name"] == "registry-cleanup"
    assert metadata["Version"] == project_version()
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert urls["Homepage"] == HOME
    assert all(url == HOME or url.startswith(f"{HOME}/-/") for url in urls.values()), urls
    # The home is where the templates' default image lives: one project, one name.
    for name in templates():
        image = spec_inputs(name)["image_repository"]["default"]
        assert image == f"registry.gitlab.com/{HOME.removeprefix('https://gitlab.com/')}/image"
    classifiers = metadata.get_all("Classifier") or []
    pythons = {
        c.removeprefix("Programming Language :: Python :: ")
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    # The Pythons the tests run on: this one, and the image's (Debian's python3.X-minimal).
    image_python = re.search(r"python(3\.\d+)-minimal", (ROOT / "Dockerfile").read_text())
    assert image_python is not None
    assert {f"3.{sys.version_info.minor}", image_python.group(1), "3.11"} <= pythons
    assert min(pythons, key=lambda v: int(v.split(".")[1])) == "3.11"  # = Requires-Python


def test_the_readme_names_this_package_and_the_templates_image(dists: Dists):
    install = (ROOT / "README.md").read_text().split("## Install\n", 1)[1].split("\n## ", 1)[0]
    name = re.escape(wheel_metadata(dists.wheel)["Name"])
    assert re.search(rf"^pipx install {name}\s", install, re.M), install
    images = {spec_inputs(name)["image_repository"]["default"] for name in templates()}
    assert len(images) == 1
    assert f"docker run --rm -e GITLAB_TOKEN {images.pop()}:" in install
    assert "--install-completion" in install


def test_the_command_is_the_cli_entry_point(dists: Dists):
    with zipfile.ZipFile(dists.wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert "registry-cleanup = registry_cleanup.cli:main" in entry_points.splitlines()


# -- the pipx path: a fresh venv with the wheel, outside the checkout ------------------------


@dataclass(frozen=True)
class Installed:
    venv: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """Only the venv and the system's tools on PATH; none of the checkout or its .tools."""
        return {
            "PATH": f"{self.venv / 'bin'}:{SYSTEM_PATH}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            **extra,
        }

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run(*args, env=self.env(**extra), cwd=self.home, timeout=120)


@pytest.fixture(scope="module")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("pipx-path")
    home = work / "home"
    home.mkdir()
    venv = work / "venv"
    created = run(sys.executable, "-m", "venv", venv, cwd=work)
    assert created.returncode == 0, created.stderr
    # What `pipx install registry-cleanup` does with the file PyPI serves: pip, in the venv,
    # installs it and its runtime dependencies (no extras).
    pip = run(
        venv / "bin/python",
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        dists.wheel,
        cwd=work,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Installed(venv, home)


def test_a_terminal_user_has_no_regctl_here():
    # The premise of the tests below: the API paths run without regctl, as the README says.
    assert shutil.which("regctl", path=SYSTEM_PATH) is None


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed):
    where = installed.run(
        "python", "-c", "import registry_cleanup; print(registry_cleanup.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)
    dev = installed.run("python", "-c", "import pytest")
    assert dev.returncode != 0, "the dev extra came along"


def test_version_is_the_packages(installed: Installed):
    result = installed.run("registry-cleanup", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"registry-cleanup {project_version()}\n"


def test_help_lists_the_commands_and_completion(installed: Installed):
    result = installed.run("registry-cleanup", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("delete", "sweep", "restore", "bulk-delete", "policy"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout


def sweep_statuses(table: str) -> dict[str, str]:
    """tag -> status, from the table a sweep prints (repository, tag, status, reason)."""
    rows = [line.split() for line in table.splitlines() if line.startswith("127.0.0.1:")]
    return {row[1]: row[2] for row in rows}


def test_a_dry_run_sweep_against_gitlab_without_regctl(
    installed: Installed, gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    project = gitlab_emulator.add_project("group/app", default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "feature-gone", "v1.0.0"):
        pusher.push("group/app", tag)
    before = pusher.registry.tags("group/app")
    token = gitlab_emulator.personal_token(project, Role.developer)

    result = installed.run(
        "registry-cleanup",
        "sweep",
        "--api-url",
        gitlab_emulator.url,
        "--project",
        "group/app",
        GITLAB_TOKEN=token,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert sweep_statuses(result.stdout) == {
        "feature-gone": "would-delete",
        "main": "kept",
        "v1.0.0": "kept",
    }
    assert "sweep of project group/app (dry run): kept 2, would-delete 1" in result.stderr
    assert pusher.registry.tags("group/app") == before, "a dry run changed the registry"
    assert token not in result.stdout + result.stderr


# -- shell completion (typer's), installed and used as a shell would -------------------------


def test_bash_completion_installs_and_completes_commands_and_options(installed: Installed):
    bash = require_tool("bash", shutil.which("bash"))
    # Run from bash, so typer detects bash as the user's shell; `; true` keeps bash from
    # exec'ing the command, which would leave no bash above it to detect.
    install = installed.run(bash, "-c", "registry-cleanup --install-completion; true")
    assert "bash completion installed in" in install.stdout, install.stdout + install.stderr
    script = installed.home / ".bash_completions/registry-cleanup.sh"
    assert script.is_file()
    assert str(script) in (installed.home / ".bashrc").read_text()

    def complete(*words: str) -> list[str]:
        program = (
            f"source {script}; COMP_WORDS=({' '.join(words)}); "
            f"COMP_CWORD={len(words) - 1}; _registry_cleanup_completion registry-cleanup; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = installed.run(bash, "-c", program)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("registry-cleanup", "sw") == ["sweep"]
    assert "--expect-digest" in complete("registry-cleanup", "delete", "--exp")


def test_zsh_completion_script_and_answers(installed: Installed):
    # No zsh on the test machines: the script typer prints for zsh, and the answers the
    # command gives that script (the same variables the script sets), checked directly.
    shown = installed.run(
        "registry-cleanup",
        "--show-completion",
        "zsh",
        _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1",
    )
    assert shown.returncode == 0, shown.stderr
    assert "compdef _registry_cleanup_completion registry-cleanup" in shown.stdout
    assert "_REGISTRY_CLEANUP_COMPLETE=complete_zsh" in shown.stdout
    answer = installed.run(
        "registry-cleanup",
        _REGISTRY_CLEANUP_COMPLETE="complete_zsh",
        _TYPER_COMPLETE_ARGS="registry-cleanup sw",
    )
    assert answer.returncode == 0, answer.stderr
    assert '"sweep":"Delete tags whose branch' in answer.stdout
