"""Shared pieces of the reliability tests: a seeded repository, a job pointed at a proxy, fault
scenarios and their expected outcomes, and running or interrupting the command.

The sweep's fault tests can reuse Scenario, Expect, restart_after and settled as they are.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, registry_environment
from tests.conftest import ci_env, find_tool, require_tool
from tests.support.fault_proxy import Fault, FaultProxy

REPO = "group/app"
TARGET = "feature-x"
# A manifest deleted by digest: how regctl deletes its placeholder (and an untagged image).
BY_DIGEST = r"/manifests/sha256:"
# The target's manifest by tag: regctl's DELETE by tag (the whole delete on distribution v3),
# its placeholder push, and our resolve.
BY_TAG = rf"/manifests/{TARGET}$"


def removing_request(registry: LocalRegistry) -> str:
    """The request that removes TARGET: DELETE by tag on v3, the placeholder's delete on 2.8."""
    return BY_TAG if registry.deletes_by_tag else BY_DIGEST


def seed(pusher: ImagePusher) -> dict[str, str]:
    """The branch tag to delete, a tag sharing its digest, the default branch, another branch."""
    digests = {
        TARGET: pusher.push(REPO, TARGET),
        "main": pusher.push(REPO, "main"),
        "other-branch": pusher.push(REPO, "other-branch"),
    }
    digests["pinned"] = pusher.tag(REPO, TARGET, "pinned")
    return digests


def state(registry: LocalRegistry, repository: str = REPO) -> dict[str, str | None]:
    """Every tag and the digest it points at, read from the registry directly."""
    return {tag: registry.digest(repository, tag) for tag in registry.tags(repository)}


class Expect(Enum):
    fails = "fails"  # exit 1, tag at its original digest
    deletes = "deletes"  # exit 0, tag gone
    either = "either"  # one of the two, decided by timing; both are correct
    # exit 1 with the tag at its original digest when we checked; the DELETE by tag already
    # sent (a one-request delete, distribution v3) reaches the registry later and removes it.
    lands_late = "lands-late"


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: Callable[[LocalRegistry], list[Fault]]
    expect: Expect
    upstream_down: int | None = 502
    env: dict[str, str] = field(default_factory=dict)
    # Where distribution v3's one-request delete ends differently from 2.8's placeholder path.
    expect_on_v3: Expect | None = None

    def expected(self, registry: LocalRegistry) -> Expect:
        if registry.deletes_by_tag and self.expect_on_v3 is not None:
            return self.expect_on_v3
        return self.expect


def restart_after(
    seconds: float, *, methods: frozenset[str] = frozenset({"DELETE"}), path: str | None = None
) -> Callable[[LocalRegistry], list[Fault]]:
    """Stop the registry at the first matching request; start it again ``seconds`` later.

    ``path`` None: at the request that removes the tag (``removing_request``).
    """

    def faults(registry: LocalRegistry) -> list[Fault]:
        def restart() -> None:
            registry.stop()
            threading.Timer(seconds, registry.start).start()

        if path is not None:
            return [Fault.call(restart, methods=methods, path=path)]
        # The try that carries credentials: the one that would remove the tag.
        at = removing_request(registry)
        return [Fault.call(restart, methods=methods, path=at).only_authorized()]

    return faults


def settled(proxy: FaultProxy, registry: LocalRegistry) -> bool:
    """No request still inside the proxy (a delayed one), and the registry answers."""
    if proxy.in_flight:
        return False
    try:
        registry.request("GET", "/v2/")
    except OSError:
        return False
    return True


def job_env(registry: LocalRegistry, proxy: FaultProxy, **extra: str) -> dict[str, str]:
    """A branch pipeline's variables for TARGET, with the registry reached through ``proxy``."""
    return {
        **ci_env(registry, CI_COMMIT_REF_NAME=TARGET, CI_COMMIT_BRANCH=TARGET),
        "CI_REGISTRY": proxy.host,
        "CI_REGISTRY_IMAGE": f"{proxy.host}/{REPO}",
        **extra,
    }


@contextmanager
def running_delete(env: Mapping[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """``registry-cleanup delete ARGS`` in its own process group, killed if it outlives us."""
    command = require_tool("registry-cleanup", find_tool("registry-cleanup"))
    process = subprocess.Popen(
        [command, "delete", *args],
        env={**registry_environment(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def interrupt(process: subprocess.Popen[str], signum: int, *, whole_group: bool) -> str:
    """Send ``signum`` (to the whole process group, as a terminal's Ctrl-C does); return stderr."""
    if whole_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return stderr
