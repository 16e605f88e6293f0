"""What every benchmark shares: the real registry, the GitLab API emulator, the modelled
network, the commands under test, and how figures are printed.

The modelled network is tests/support/fault_proxy.FaultProxy on loopback with 25 ms before each
request is forwarded and 25 ms before its answer goes back: 25 ms each way, a 50 ms round trip
per HTTP request, the typical runner-to-registry distance. Every request a client makes (regctl
to the registry, python-gitlab to the API) crosses it; the emulator reaches the registry
directly, as GitLab's API server reaches its own registry inside the data centre.

Every benchmark runs on both registries (``FLAVOURS``): Debian's distribution 2.8, which has no
tag delete (regctl pushes a placeholder and deletes it by digest), and distribution v3.1.2, whose
DELETE by tag answers 202 as GitLab's registry does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
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
from typing import Any

from devkit.images import ImagePusher
from devkit.local_registry import FlavourName, LocalRegistry, registry_environment
from tests.fakes.gitlab_emulator import GitLabEmulator
from tests.fakes.registry_store import RegistryStore
from tests.support.fault_proxy import FaultProxy, _Request

ONE_WAY_SECONDS = 0.025
NETWORKS = ("loopback", "25ms")
FLAVOURS: tuple[FlavourName, ...] = ("2.8", "v3")


def flavour_label(flavour: str) -> str:
    return "distribution 2.8" if flavour == "2.8" else "distribution v3.1.2"


@dataclass(frozen=True)
class Timed:
    """One request as a client saw it cross the modelled link (seconds since the epoch)."""

    start: float  # the proxy has read the request head
    end: float  # the answer is written back
    method: str
    target: str
    status: int | None
    # For GraphQL, which operation the POST carried (see graphql_operation); else "".
    operation: str = ""


def graphql_operation(body: bytes, seen_pages: set[tuple[object, ...]]) -> str:
    """A GraphQL request's part in a sweep: a tag page (first read or read again just before
    its deletions, told apart by the repository, order and cursor) or the mutation deleting
    tags."""
    try:
        payload = json.loads(body)
    except ValueError:
        return "GraphQL"
    query = str(payload.get("query", ""))
    variables = payload.get("variables") or {}
    if "destroyContainerRepositoryTags" in query:
        return "GraphQL delete tags"
    if "containerRepository" in query:
        page = (variables.get("id"), variables.get("sort"), variables.get("after"))
        again = page in seen_pages
        seen_pages.add(page)
        return "GraphQL tag page read again" if again else "GraphQL tag page"
    return "GraphQL"


class TimedProxy(FaultProxy):
    """The latency proxy, also keeping when each request started and ended: the timeline.

    It hooks FaultProxy's own per-request steps (``_serve_request``, ``_record``) rather than
    changing the proxy the tests share; tests/integration/test_bench_smoke.py runs it.
    """

    def __init__(self, upstream: str, **kwargs: Any) -> None:
        super().__init__(upstream, **kwargs)
        self.timeline: list[Timed] = []
        self._graphql_pages: set[tuple[object, ...]] = set()
        # Each connection is served by its own task, so the status _record sees is this one's.
        self._status: contextvars.ContextVar[int | None] = contextvars.ContextVar("status")

    def _record(self, method: str, target: str, action: str, status: int | None) -> None:
        self._status.set(status)
        super()._record(method, target, action, status)

    async def _serve_request(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        start = time.time()
        self._status.set(None)
        operation = ""
        if request.target.split("?", 1)[0].endswith("/api/graphql"):
            operation = graphql_operation(request.body, self._graphql_pages)
        try:
            return await super()._serve_request(request, writer)
        finally:
            status = self._status.get(None)
            self.timeline.append(
                Timed(start, time.time(), request.method, request.target, status, operation)
            )


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
    # On the 25 ms model: the proxies' timelines are the client's API and registry traffic.
    api_proxy: TimedProxy | None = None
    registry_proxy: TimedProxy | None = None


@contextmanager
def stack(
    network: str, flavour: FlavourName = "2.8", workdir: Path | None = None
) -> Iterator[Stack]:
    """A fresh registry of ``flavour`` and an emulator in front of it, behind ``network``."""
    if network not in NETWORKS:
        raise SystemExit(f"network must be one of {', '.join(NETWORKS)}")
    if flavour not in FLAVOURS:
        raise SystemExit(f"registry flavour must be one of {', '.join(FLAVOURS)}")
    root = workdir or Path(tempfile.mkdtemp(prefix="registry-cleanup-bench-"))
    with ExitStack() as stack:
        registry = stack.enter_context(LocalRegistry(root / "registry", flavour=flavour))
        pusher = stack.enter_context(ImagePusher(registry, tool("regctl")))
        emulator = stack.enter_context(GitLabEmulator(RegistryStore(registry)))
        registry_host, api_url = registry.host, emulator.url
        api_proxy: TimedProxy | None = None
        registry_proxy: TimedProxy | None = None
        if network == "25ms":
            # Long lifetime: a sequential baseline through the proxy takes minutes.
            def proxy(upstream: str) -> TimedProxy:
                return stack.enter_context(
                    TimedProxy(
                        upstream,
                        latency=ONE_WAY_SECONDS,
                        latency_after=ONE_WAY_SECONDS,
                        lifetime=4 * 3600,
                    )
                )

            registry_proxy = proxy(registry.host)
            registry_host = registry_proxy.host
            api_proxy = proxy(f"127.0.0.1:{emulator.port}")
            api_url = f"http://{api_proxy.host}/api/v4"
            emulator.registry_host = registry_host
        yield Stack(
            network,
            registry,
            pusher,
            emulator,
            registry_host,
            api_url,
            root,
            api_proxy,
            registry_proxy,
        )
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


class Regbot:
    """regclient's regbot as a user runs it: one config file, Lua scripts that delete tags,
    ``regbot once``. The orphans are split round-robin over ``scripts`` scripts.

    With ``parallel`` > 0, ``regbot once`` starts every script at once (cmd/regbot/root.go
    runOnce) and ``parallel`` only throttles image copies, not ``tag.delete``; what caps the
    deletes in flight is the number of scripts and regclient's per-host ``reqConcurrent``
    (default 3, config/host.go). To show regbot at its best, ``parallel`` N means N scripts and
    ``reqConcurrent`` N.
    """

    def __init__(self, host: str, username: str, password: str) -> None:
        self.host = host
        self._directory = Path(tempfile.mkdtemp(prefix="bench-regbot-"))
        self.env = base_env()
        self._username = username
        self._password = password

    def config(self, repository: str, tags: Sequence[str], parallel: int) -> str:
        scripts = []
        for index in range(parallel):
            mine = list(tags[index::parallel])
            if not mine:
                continue
            lua_tags = ", ".join(json.dumps(tag) for tag in mine)  # JSON strings are Lua strings
            body = (
                f"local tags = {{{lua_tags}}}\n"
                # Not `tag`: that would hide regbot's tag module inside the loop.
                "for _, name in ipairs(tags) do\n"
                f'  tag.delete("{self.host}/{repository}:" .. name)\n'
                "end\n"
            )
            scripts.append({"name": f"delete-{index}", "script": body})
        host = {
            "registry": self.host,
            "tls": "disabled",
            "user": self._username,
            "pass": self._password,
            "reqConcurrent": parallel,
        }
        document = {
            "version": 1,
            "creds": [host],
            "defaults": {"parallel": parallel, "skipDockerConfig": True, "timeout": "3600s"},
            "scripts": scripts,
        }
        return json.dumps(document, indent=2)  # YAML is a superset of JSON

    def delete(self, repository: str, tags: Sequence[str], parallel: int) -> None:
        path = self._directory / f"regbot-{parallel}.yml"
        path.write_text(self.config(repository, tags, parallel))
        path.chmod(0o600)  # it holds the registry password, as a user's config would
        run([tool("regbot"), "once", "-c", str(path), "-v", "warn"], self.env)

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


GRAPHQL_TAGS_PER_PAGE = 20  # ContainerRepositoryDetails.tags max_page_size
REST_PER_PAGE = 100


@dataclass(frozen=True)
class Limit:
    """The modelled limit of a sweep: the requests it cannot avoid, times the round trip, over
    the requests in flight at once."""

    listing: int  # repository list, GraphQL tag pages, branch pages, git tag pages
    deletes: int  # one per orphan
    round_trip: float
    concurrency: int
    tag_pages: int = 1  # of the listing, the GraphQL tag pages (cursor-chained)

    @property
    def requests(self) -> int:
        return self.listing + self.deletes

    @property
    def seconds(self) -> float:
        return self.round_trip * self.requests / self.concurrency

    @property
    def seconds_listing_serial(self) -> float:
        """The same, if the listing pages (cursor-chained) go one after another."""
        return self.round_trip * (self.listing + self.deletes / self.concurrency)

    @property
    def seconds_cursor_chained(self) -> float:
        """The same, with the listing as GitLab's API lets it go at best: the repository list,
        then the tag pages (each needs the previous page's cursor; read from both ends: the
        first, then two a round), then the branch, git tag and rule lists at once."""
        rounds = 1 + -(-(self.tag_pages - 1) // 2)
        return self.round_trip * (1 + rounds + 1 + self.deletes / self.concurrency)


def sweep_limit(
    tags: int, orphans: int, branches: int, git_tags: int, round_trip: float, concurrency: int
) -> Limit:
    def pages(items: int, per_page: int) -> int:
        return max(1, -(-items // per_page))

    listing = (
        1
        + pages(tags, GRAPHQL_TAGS_PER_PAGE)
        + pages(branches, REST_PER_PAGE)
        + pages(git_tags, REST_PER_PAGE)
    )
    return Limit(listing, orphans, round_trip, concurrency, pages(tags, GRAPHQL_TAGS_PER_PAGE))


def loopback_round_trip(url: str, samples: int = 21) -> float:
    """Median seconds of one small HTTP request to ``url`` on loopback (no modelled delay)."""
    import urllib.request

    def once() -> None:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=5).read()  # noqa: S310 (loopback, ours)

    once()  # the first one pays for the connection and the server's warm-up
    return median([timed(once) for _ in range(samples)])


def round_trip(network: str, loopback_url: str) -> float:
    """The modelled round trip (50 ms) on the 25 ms model; on loopback, measured."""
    return 2 * ONE_WAY_SECONDS if network == "25ms" else loopback_round_trip(loopback_url)


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


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
    print(f"machine: {machine()}; {load_average()} at the start")


def ratio_line(name: str, value: float, goal: str, met: bool) -> str:
    return f"RATIO {name}: {value:.2f} (goal {goal}: {'met' if met else 'MISSED'})"
