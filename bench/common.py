"""What every benchmark shares: the real registry, the GitLab API emulator, the modelled
network, the commands under test, and how figures are printed.

The modelled network is tests/support/fault_proxy.FaultProxy on loopback with 25 ms before each
request is forwarded and 25 ms before its answer goes back: 25 ms each way, a 50 ms round trip
per HTTP request, the typical runner-to-registry distance. Every request a client makes (regctl
to the registry, python-gitlab to the API) crosses it; the emulator reaches the registry
directly, as GitLab's API server reaches its own registry inside the data centre.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, registry_environment
from tests.fakes.gitlab_emulator import GitLabEmulator
from tests.fakes.registry_store import RegistryStore
from tests.support.fault_proxy import FaultProxy

ONE_WAY_SECONDS = 0.025
NETWORKS = ("loopback", "25ms")


@dataclass
class Stack:
    """A registry and the emulator, and the addresses clients use to reach them."""

    network: str
    registry: LocalRegistry
    pusher: ImagePusher
    emulator: GitLabEmulator
    registry_host: str  # what regctl talks to: the registry, or the proxy in front of it
    api_url: str  # what python-gitlab talks to: CI_API_V4_URL, perhaps through the proxy
    workdir: Path


@contextmanager
def stack(network: str, workdir: Path | None = None) -> Iterator[Stack]:
    if network not in NETWORKS:
        raise SystemExit(f"network must be one of {', '.join(NETWORKS)}")
    root = workdir or Path(tempfile.mkdtemp(prefix="registry-cleanup-bench-"))
    with ExitStack() as stack:
        registry = stack.enter_context(LocalRegistry(root / "registry"))
        pusher = stack.enter_context(ImagePusher(registry, tool("regctl")))
        emulator = stack.enter_context(GitLabEmulator(RegistryStore(registry)))
        registry_host, api_url = registry.host, emulator.url
        if network == "25ms":
            # Long lifetime: a sequential baseline through the proxy takes minutes.
            def proxy(upstream: str) -> FaultProxy:
                return stack.enter_context(
                    FaultProxy(
                        upstream,
                        latency=ONE_WAY_SECONDS,
                        latency_after=ONE_WAY_SECONDS,
                        lifetime=4 * 3600,
                    )
                )

            registry_host = proxy(registry.host).host
            api_proxy = proxy(f"127.0.0.1:{emulator.port}")
            api_url = f"http://{api_proxy.host}/api/v4"
            emulator.registry_host = registry_host
        yield Stack(network, registry, pusher, emulator, registry_host, api_url, root)
    shutil.rmtree(root, ignore_errors=True)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not on PATH; run the benchmarks with ./dev bench")
    return found


def run(
    argv: Sequence[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} ... exited {completed.returncode}: {completed.stderr[-800:]}"
        )
    return completed


def base_env() -> dict[str, str]:
    """The environment of every command we time: no CI variables, no docker config."""
    env = registry_environment()
    env.pop("DOCKER_AUTH_CONFIG", None)
    env["HOME"] = tempfile.mkdtemp(prefix="bench-home-")  # no ~/.docker/config.json
    return env


class Regctl:
    """regctl as a user's script runs it: one REGCTL_CONFIG, logged in once, then one process
    per command (each re-authenticates with the registry)."""

    def __init__(self, host: str, username: str, password: str) -> None:
        self.host = host
        self._directory = Path(tempfile.mkdtemp(prefix="bench-regctl-"))
        self.env = {**base_env(), "REGCTL_CONFIG": str(self._directory / "config.json")}
        self._username = username
        self._password = password

    def plain_http(self) -> None:
        """Our registry speaks plain HTTP; GitLab's speaks TLS and needs no such line, so
        callers keep this out of the time they measure."""
        run(
            [tool("regctl"), "registry", "set", self.host, "--tls", "disabled", "--skip-check"],
            self.env,
        )

    def login(self) -> None:
        run(
            [tool("regctl"), "registry", "login", self.host, "-u", self._username, "--pass-stdin"],
            self.env,
            stdin=self._password,
        )

    def tag_rm(self, repository: str, tag: str) -> None:
        run([tool("regctl"), "tag", "rm", f"{self.host}/{repository}:{tag}"], self.env)

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


def timed(action: object) -> float:
    """Seconds ``action()`` took (wall clock)."""
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")


def ratio_line(name: str, value: float, goal: str, met: bool) -> str:
    return f"RATIO {name}: {value:.2f} (goal {goal}: {'met' if met else 'MISSED'})"
