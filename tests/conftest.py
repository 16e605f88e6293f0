"""Shared fixtures: real tools and a real registry, or a loud failure under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import (
    FLAVOURS,
    FlavourName,
    LocalRegistry,
    find_registry_binary,
    registry_environment,
)
from devkit.seeding import copy_storage
from tests.support.warm_command import WarmCommand

ROOT = Path(__file__).resolve().parent.parent
# pytest keeps the test modules it rewrote (assertions) in __pycache__ only where bytecode may
# be written; with PYTHONDONTWRITEBYTECODE set (as on this machine) every worker rewrote every
# module again, about 4 CPU-seconds each. This process only: the commands it starts keep the
# caller's environment. scripts/test.sh collects once before the workers start.
sys.dont_write_bytecode = False
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


# The registry a test gets unless it runs on both: distribution v3, whose DELETE by tag removes
# only that tag, as GitLab's own registry does. The GitLab emulator's registry is this one too.
DEFAULT_FLAVOUR: FlavourName = "v3"
# Test ids of the two flavours: test_x[dist2.8], test_x[dist3].
FLAVOUR_IDS: dict[FlavourName, str] = {"2.8": "dist2.8", "v3": "dist3"}
BOTH_REGISTRIES = "both_registries"
IMAGE = "image"
SLOW = "slow"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{BOTH_REGISTRIES}: run on distribution 2.8 (regctl's placeholder path) and v3 "
        "(DELETE by tag, as GitLab's registry)",
    )
    config.addinivalue_line(
        "markers",
        f"{IMAGE}: builds the container image with buildah (minutes when its inputs changed); "
        "`./dev test --quick` leaves these out, CI never does",
    )
    config.addinivalue_line(
        "markers",
        f"{SLOW}: waits on purpose (time-outs, retries, outages), builds and installs the "
        "package, or runs the benchmarks; `./dev test --quick` leaves these out too, CI never "
        "does",
    )


# Test modules whose tests run on one pytest-xdist worker (scripts/test.sh runs `-n N`), each
# with why. The others' tests are spread one by one, like xdist's own "load".
ONE_WORKER_MODULES = {
    # The built image is pushed once to one registry per module (module fixtures); spread over
    # N workers that was N pushes of both platforms, and N builds with a cold cache.
    "tests/integration/test_image_built.py": "the image, pushed once",
    # One fresh venv with the wheel (pip wheel + pip install) serves its four tests.
    "tests/integration/test_image_install.py": "the fresh venv, made once",
    # Benchmarks measure contenders side by side; one at a time, not against each other.
    "tests/integration/test_bench_smoke.py": "benchmarks, one at a time",
    # The sdist and wheel (python -m build) and the pipx-like venv are built once, not on
    # every worker that draws one of its tests (about 20 s of CPU each).
    "tests/integration/test_packaging.py": "the package, built and installed once",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """ONE_WORKER_MODULES first, in the order listed: each is a long chain on one worker, so it
    starts while the other workers take the many short tests, instead of trailing at the end
    (xdist hands out work in collection order)."""
    rank = {module: place for place, module in enumerate(ONE_WORKER_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, unknown under -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's "load", except that the tests of ONE_WORKER_MODULES go to one worker each.

    xdist's own `--dist loadgroup` would do this with xdist_group marks, but pytest-xdist 3.8
    tags grouped tests by setting Item._nodeid, which pytest 9.2 no longer reads: the marks
    are silently ignored. Its scope scheduler, given scopes by nodeid, does not depend on that.
    """
    if config.getvalue("dist") != "load":
        return None  # another --dist was asked for explicitly
    from xdist.scheduler import LoadScopeScheduling

    class ModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return ModulesTogether(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked both_registries run once per flavour; the others on DEFAULT_FLAVOUR."""
    if "registry_flavour" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker(BOTH_REGISTRIES) is None:
        return
    flavours = list(FLAVOUR_IDS)
    metafunc.parametrize(
        "registry_flavour", flavours, ids=[FLAVOUR_IDS[f] for f in flavours], indirect=True
    )


@pytest.fixture
def registry_flavour(request: pytest.FixtureRequest) -> FlavourName:
    """Which distribution release this test's registries run."""
    flavour: FlavourName = getattr(request, "param", DEFAULT_FLAVOUR)
    return flavour


@pytest.fixture
def registry_binary(registry_flavour: FlavourName) -> str:
    flavour = FLAVOURS[registry_flavour]
    return require_tool(flavour.binary, find_registry_binary(registry_flavour))


@pytest.fixture(scope="session")
def registry_binary_2_8() -> str:
    """Debian's docker-registry: LocalRegistry's own default, which the demo and bench/ run."""
    return require_tool("docker-registry", find_registry_binary("2.8"))


@pytest.fixture
def registry(
    tmp_path: Path, registry_flavour: FlavourName, registry_binary: str
) -> Iterator[LocalRegistry]:
    """A fresh registry with deletes enabled and htpasswd auth."""
    with LocalRegistry(tmp_path / "registry", flavour=registry_flavour) as running:
        yield running


@pytest.fixture
def registry_no_deletes(
    tmp_path: Path, registry_flavour: FlavourName, registry_binary: str
) -> Iterator[LocalRegistry]:
    """A fresh registry that answers 405 UNSUPPORTED to every delete."""
    with LocalRegistry(
        tmp_path / "registry-no-deletes", deletes_enabled=False, flavour=registry_flavour
    ) as running:
        yield running


@pytest.fixture
def pusher(registry: LocalRegistry, regctl_binary: str) -> Iterator[ImagePusher]:
    with ImagePusher(registry, regctl_binary) as images:
        yield images


Seed = Callable[[ImagePusher], dict[str, str]]
PushedOnce = Callable[[LocalRegistry, Seed], dict[str, str]]


@pytest.fixture(scope="session")
def pushed_once(tmp_path_factory: pytest.TempPathFactory, regctl_binary: str) -> PushedOnce:
    """``seed``'s images in a test's registry, pushed with regctl once per worker and flavour.

    Many tests start from the same few images; each push costs about 75 ms of regctl's and the
    registry's CPU. The first test of a seed pushes them into a registry of its own; every test
    then gets a copy of that storage (devkit.seeding.copy_storage), what the pushes left.
    """
    stored: dict[tuple[Seed, str], tuple[Path, dict[str, str]]] = {}

    def seeded(registry: LocalRegistry, seed: Seed) -> dict[str, str]:
        key = (seed, registry.flavour)
        if key not in stored:
            root = tmp_path_factory.mktemp("pushed-once") / "registry"
            with (
                LocalRegistry(root, flavour=registry.flavour) as source,
                ImagePusher(source, regctl_binary) as pusher,
            ):
                stored[key] = (root / "data", seed(pusher))
        storage, digests = stored[key]
        copy_storage(storage, registry)
        return dict(digests)

    return seeded


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


RunCli = Callable[..., CliResult]


@pytest.fixture(scope="session")
def warm_command(
    regctl_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WarmCommand]:
    """The installed command with its imports done, forking a process per run
    (tests/support/warm_command.py): run_cli's runs start in milliseconds, not half a second."""
    command = require_tool("registry-cleanup", find_tool("registry-cleanup"))
    env = {**registry_environment(), "REGISTRY_CLEANUP_REGCTL": regctl_binary}
    with WarmCommand(command, env, tmp_path_factory.mktemp("warm")) as warm:
        yield warm


@pytest.fixture
def run_cli(warm_command: WarmCommand) -> RunCli:
    """Run the installed ``registry-cleanup`` command as a user would: a real process."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> CliResult:
        argv = [warm_command.command, *args]
        full_env = {**warm_command.env, **(env or {})}
        warm = warm_command.run(argv, full_env, stdin, timeout=120)
        if warm is not None:
            return CliResult(*warm)
        completed = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
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
