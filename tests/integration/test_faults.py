"""`registry-cleanup delete` under injected faults: the real regctl, a real registry, our proxy.

Every scenario ends the same way: the tag is either deleted or still points at its original
digest (never at regctl's placeholder), nothing else changed, the exit code tells the truth,
and running the same command again finishes the job.

They run on both registries. On distribution 2.8 regctl deletes by placeholder (DELETE by tag
refused, a placeholder pushed to the tag, deleted by digest); on v3 it sends one DELETE by tag.
Faults aimed at the placeholder's requests leave a v3 delete alone, and faults aimed at "the
request that removes the tag" (scenario.removing_request) hit each flavour's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from tests.conftest import PushedOnce, RunCli
from tests.support.fault_proxy import Fault, FaultProxy, wait_for
from tests.support.scenario import (
    BY_DIGEST,
    BY_TAG,
    REPO,
    TARGET,
    Expect,
    Scenario,
    interrupt,
    job_env,
    removing_request,
    restart_after,
    running_delete,
    seed,
    settled,
    state,
)

# Faults wait out time-outs and retries on purpose:
# `./dev test --quick` leaves this module out (the slow marker, tests/conftest.py).
pytestmark = pytest.mark.slow

SCENARIOS = [
    Scenario(
        "503-on-every-delete",
        lambda _: [Fault.respond(503, methods={"DELETE"}, times=None)],
        Expect.fails,
    ),
    Scenario(
        "503-burst-on-everything",
        lambda _: [Fault.respond(503, times=4)],
        Expect.fails,
    ),
    Scenario(
        # v3 deletes by tag and never deletes by digest.
        "503-on-the-digest-delete-only",
        lambda _: [Fault.respond(503, methods={"DELETE"}, path=BY_DIGEST, times=None)],
        Expect.fails,
        expect_on_v3=Expect.deletes,
    ),
    Scenario(
        "429-twice-with-retry-after",
        lambda _: [
            Fault.respond(429, methods={"DELETE"}, times=2, headers={"Retry-After": "1"}),
        ],
        Expect.deletes,
    ),
    Scenario(
        "429-forever-with-retry-after",
        lambda _: [
            Fault.respond(429, methods={"DELETE"}, times=None, headers={"Retry-After": "1"}),
        ],
        Expect.fails,
    ),
    Scenario(
        "reset-before-any-delete-reaches-the-registry",
        lambda _: [Fault.reset(methods={"DELETE"}, times=None)],
        Expect.fails,
    ),
    Scenario(
        # v3 pushes no placeholder.
        "reset-while-pushing-the-placeholder",
        lambda _: [Fault.reset(methods={"PUT"}, path=BY_TAG, times=None)],
        Expect.fails,
        expect_on_v3=Expect.deletes,
    ),
    Scenario(
        "reset-after-the-registry-deleted",
        lambda _: [Fault.reset(after_forwarding=True, methods={"DELETE"}, times=None)],
        Expect.deletes,
    ),
    Scenario(
        "slow-resolve-beyond-the-timeout",
        lambda _: [Fault.delay(8, methods={"HEAD"}, path=BY_TAG, times=None)],
        Expect.fails,
        env={"REGISTRY_CLEANUP_TIMEOUT": "3"},
    ),
    Scenario(
        "slow-answer-after-the-registry-deleted",
        lambda registry: [
            Fault.delay(
                8, after_forwarding=True, methods={"DELETE"}, path=removing_request(registry)
            ).only_authorized()
        ],
        Expect.deletes,
        env={"REGISTRY_CLEANUP_TIMEOUT": "3"},
    ),
    Scenario(
        # 2.8: the late delete of the placeholder reaches the registry after we restored the tag
        # and removes only the placeholder. v3: the late DELETE by tag removes the tag itself,
        # after the run reported it kept; a request already sent cannot be called back.
        "slow-delete-arriving-after-the-timeout",
        lambda registry: [
            Fault.delay(12, methods={"DELETE"}, path=removing_request(registry)).only_authorized()
        ],
        Expect.fails,
        env={"REGISTRY_CLEANUP_TIMEOUT": "3"},
        expect_on_v3=Expect.lands_late,
    ),
    Scenario("registry-restarts-briefly", restart_after(1.0), Expect.either),
    Scenario(
        "registry-down-longer-than-regctl-retries",
        restart_after(8.0),
        Expect.fails,
    ),
    Scenario(
        "registry-restarts-with-connections-refused",
        restart_after(8.0),
        Expect.fails,
        upstream_down=None,
    ),
]


@pytest.fixture
def seeded(registry: LocalRegistry, pushed_once: PushedOnce) -> dict[str, str]:
    return pushed_once(registry, seed)


@pytest.mark.both_registries
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_delete_under_fault_keeps_or_deletes_and_a_rerun_finishes(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str], scenario: Scenario
) -> None:
    before = state(registry)
    expect = scenario.expected(registry)
    with FaultProxy(registry.host, upstream_down=scenario.upstream_down, lifetime=120) as proxy:
        proxy.add(*scenario.faults(registry))
        env = job_env(registry, proxy, **scenario.env)

        first = run_cli("delete", "--json", env=env)
        at_exit = registry.digest(REPO, TARGET)

        # Let every delayed request and restart play out before judging the registry.
        wait_for(lambda: settled(proxy, registry), 30, "the proxy and registry to settle")
        after = state(registry)
        document = json.loads(first.stdout)
        if first.returncode == 0:
            assert expect not in (Expect.fails, Expect.lands_late), first.output
            assert document["status"] == "deleted"
            assert TARGET not in after
            assert first.stderr == ""
        else:
            assert expect is not Expect.deletes, first.output
            assert first.returncode == 1, first.output
            assert document["status"] == "failed"
            assert len(first.stderr.splitlines()) == 1, first.stderr
            # Still at the original digest when the run ended: not on regctl's placeholder.
            assert at_exit == seeded[TARGET], document["reason"]
            if expect is Expect.lands_late:
                assert TARGET not in after, "the DELETE by tag sent before the timeout landed"
            else:
                assert after[TARGET] == seeded[TARGET], document["reason"]
        # Nothing else changed: the tag sharing the digest, the default branch, other branches.
        assert {t: d for t, d in after.items() if t != TARGET} == {
            t: d for t, d in before.items() if t != TARGET
        }

        proxy.clear()
        again = run_cli("delete", "--json", env=env)

    assert again.returncode == 0, again.output
    assert json.loads(again.stdout)["status"] == ("deleted" if TARGET in after else "absent")
    assert state(registry) == {t: d for t, d in before.items() if t != TARGET}


@pytest.mark.both_registries
def test_two_deletes_of_the_same_tag_at_once_both_succeed(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str
) -> None:
    digests = seed(pusher)
    untouched = {t: d for t, d in state(registry).items() if t != TARGET}
    # 25 ms per request widens the window in which the two runs interleave.
    with FaultProxy(registry.host, latency=0.025, lifetime=120) as proxy:
        for round_number in range(3):
            if round_number:
                pusher.push(REPO, TARGET, seed=f"round-{round_number}")
            env = {**job_env(registry, proxy), "REGISTRY_CLEANUP_REGCTL": regctl_binary}
            with running_delete(env, "--json") as first, running_delete(env, "--json") as second:
                runs = [first, second]
                results = [run.communicate(timeout=120) for run in runs]

            for run, (stdout, stderr) in zip(runs, results, strict=True):
                assert run.returncode == 0, stdout + stderr
            statuses = sorted(json.loads(stdout)["status"] for stdout, _ in results)
            assert statuses in (["absent", "deleted"], ["deleted", "deleted"]), results
            after = state(registry)
            assert TARGET not in after
            assert after == untouched
    assert untouched["pinned"] == digests[TARGET]


@contextmanager
def delete_stuck_on_its_last_request(
    registry: LocalRegistry, regctl_binary: str
) -> Iterator[tuple[FaultProxy, subprocess.Popen[str], dict[str, str]]]:
    """A running delete waiting on the request that would remove the tag, which hangs (and never
    reaches the registry). On 2.8 the tag is on regctl's placeholder by then, waiting on the
    placeholder's delete; on v3 the hanging request is the one DELETE by tag, and no placeholder
    exists.

    Yields the proxy, the running process and the environment it was started with.
    """
    removing = removing_request(registry)
    with FaultProxy(registry.host, lifetime=120) as proxy:
        proxy.add(
            Fault.respond(
                503, methods={"DELETE"}, path=removing, after=60, times=None
            ).only_authorized()
        )
        env = {**job_env(registry, proxy), "REGISTRY_CLEANUP_REGCTL": regctl_binary}
        with running_delete(env) as process:
            wait_for(
                lambda: any(m == "DELETE" and re.search(removing, t) for m, t in proxy.in_flight),
                30,
                "the delete to hang",
            )
            yield proxy, process, env


def assert_on_placeholder_only_on_2_8(
    registry: LocalRegistry, proxy: FaultProxy, original: str
) -> None:
    """While the delete hangs: 2.8 has re-pointed the tag at a placeholder, v3 pushed none."""
    if registry.deletes_by_tag:
        assert registry.digest(REPO, TARGET) == original
        assert [s.method for s in proxy.changes() if s.status != 401] == [], proxy.changes()
    else:
        assert registry.digest(REPO, TARGET) not in (None, original)


@pytest.mark.parametrize(
    ("signum", "whole_group", "code"),
    [
        (signal.SIGTERM, False, 128 + signal.SIGTERM),  # a CI job cancelled or timed out
        (signal.SIGINT, True, 130),  # Ctrl-C at a terminal
    ],
    ids=["sigterm", "sigint-group"],
)
@pytest.mark.both_registries
def test_interrupted_between_placeholder_and_delete_restores_the_tag(
    registry: LocalRegistry,
    pusher: ImagePusher,
    regctl_binary: str,
    signum: signal.Signals,
    whole_group: bool,
    code: int,
) -> None:
    """Stopped while the tag points at regctl's placeholder: it must point back before exit.

    On v3, stopped while its one DELETE by tag hangs: the tag was never anywhere else."""
    digests = seed(pusher)
    before = state(registry)
    with delete_stuck_on_its_last_request(registry, regctl_binary) as (proxy, process, _):
        assert_on_placeholder_only_on_2_8(registry, proxy, digests[TARGET])
        stderr = interrupt(process, signum, whole_group=whole_group)

    assert process.returncode == code, stderr
    assert state(registry) == before, stderr


def test_the_proxy_forwards_every_method_with_its_body_and_counts_them(
    registry: LocalRegistry,
) -> None:
    blob = b"registry-cleanup fault proxy\n"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()

    def call(proxy: FaultProxy, method: str, path: str, body: bytes | None = None) -> Response:
        url = path if path.startswith("http") else f"http://{proxy.host}{path}"
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            url,
            data=body,
            method=method,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()

    with FaultProxy(registry.host, latency=0.025, lifetime=60) as proxy:
        _, headers, _ = call(proxy, "POST", f"/v2/{REPO}/blobs/uploads/")
        location = headers["Location"]
        _, headers, _ = call(proxy, "PATCH", location, blob)
        location = headers["Location"]
        separator = "&" if "?" in location else "?"
        status, _, _ = call(proxy, "PUT", f"{location}{separator}digest={digest}", b"")
        assert status == 201
        assert call(proxy, "HEAD", f"/v2/{REPO}/blobs/{digest}")[1]["Content-Length"] == str(
            len(blob)
        )
        assert call(proxy, "GET", f"/v2/{REPO}/blobs/{digest}")[2] == blob
        assert call(proxy, "DELETE", f"/v2/{REPO}/blobs/{digest}")[0] == 202

        assert proxy.methods() == Counter(
            {"POST": 1, "PATCH": 1, "PUT": 1, "HEAD": 1, "GET": 1, "DELETE": 1}
        )
        assert [s.method for s in proxy.changes()] == ["POST", "PATCH", "PUT", "DELETE"]
    assert registry.request("HEAD", f"/v2/{REPO}/blobs/{digest}")[0] == 404


def test_the_proxy_stops_by_itself_after_its_lifetime(registry: LocalRegistry) -> None:
    proxy = FaultProxy(registry.host, lifetime=0.5).start()
    try:
        wait_for(lambda: not _accepts(proxy.host), 20, "the proxy to stop by itself")
    finally:
        proxy.stop()


Response = tuple[int, dict[str, str], bytes]


def _accepts(host: str) -> bool:
    address, _, port = host.rpartition(":")
    try:
        with socket.create_connection((address, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.both_registries
def test_a_delete_killed_midway_is_finished_by_the_rerun_even_with_expect_digest(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str
) -> None:
    """SIGKILL cannot be handled: the tag stays on regctl's placeholder until the next run."""
    digests = seed(pusher)
    with delete_stuck_on_its_last_request(registry, regctl_binary) as (proxy, process, env):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert_on_placeholder_only_on_2_8(registry, proxy, digests[TARGET])
        proxy.clear()

        again = run_cli("delete", "--json", "--expect-digest", digests[TARGET], env=env)

    assert again.returncode == 0, again.output
    assert json.loads(again.stdout)["status"] == "deleted"
    assert TARGET not in registry.tags(REPO)
    assert registry.digest(REPO, "pinned") == digests[TARGET]


def drop_manifest_behind(registry: LocalRegistry, repository: str, tag: str) -> None:
    """Leave ``tag`` dangling the way distribution 2.8 does under concurrent deletes.

    Its delete-by-digest removes the manifest's revision, then fails to untag while another
    delete rewrites a tag link; the tag stays listed, pointing at a manifest that is gone.
    """
    link = registry.tags_directory(repository) / tag / "current" / "link"
    algorithm, _, hex_digest = link.read_text().partition(":")
    revisions = link.parents[3] / "revisions" / algorithm / hex_digest
    (revisions / "link").unlink()


@pytest.mark.both_registries
def test_a_tag_the_registry_leaves_dangling_is_pointed_back_and_deleted(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str
) -> None:
    """2.8: when the placeholder's delete arrives, its manifest is already gone: the registry
    answers 404 and the tag is left listed but unresolvable. v3: the tag's manifest is gone when
    its DELETE by tag arrives, which removes the tag entry all the same."""
    digests = seed(pusher)
    before = state(registry)
    with FaultProxy(registry.host, lifetime=120) as proxy:
        proxy.add(
            Fault.call(
                lambda: drop_manifest_behind(registry, REPO, TARGET),
                methods={"DELETE"},
                path=removing_request(registry),
            ).only_authorized()
        )
        env = {**job_env(registry, proxy), "REGISTRY_CLEANUP_REGCTL": regctl_binary}
        result = run_cli("delete", "--json", env=env)

    assert result.returncode == 0, result.output
    assert json.loads(result.stdout)["status"] == "deleted", result.output
    assert TARGET not in registry.tags(REPO)
    assert state(registry) == {t: d for t, d in before.items() if t != TARGET}
    assert registry.digest(REPO, "pinned") == digests[TARGET]
