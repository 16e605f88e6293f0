"""`registry-cleanup sweep` under injected faults between python-gitlab and the GitLab emulator.

The same promises as for delete: every tag is either gone (only orphans may go) or still at
its original digest, the summary counts what really happened, the exit code reports failures,
and running the same sweep again finishes the job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.fakes.seed import push_created
from tests.support.fault_proxy import Fault, FaultProxy, wait_for
from tests.support.scenario import REPO, Expect, restart_after, settled, state

# Faults wait out time-outs and retries on purpose:
# `./dev test --quick` leaves this module out (the slow marker, tests/conftest.py).
pytestmark = pytest.mark.slow

ORPHANS = ("gone-1", "gone-2", "gone-3", "copy-of-main")
KEPT = ("main", "live", "latest", "v1.0.0")
TAG_DELETE = r"/registry/repositories/\d+/tags/[^/?]+$"


@dataclass(frozen=True)
class SweepScenario:
    name: str
    faults: Callable[[LocalRegistry], list[Fault]]
    expect: Expect


# Deletions are REST DELETEs with a job token, and destroyContainerRepositoryTags mutations
# (POSTs to /api/graphql) with an access token: each delete fault is aimed at both.
MUTATION = "destroyContainerRepositoryTags"


def _on_deletes(make: Callable[..., Fault], *args: Any, **kwargs: Any) -> list[Fault]:
    return [make(*args, methods={"DELETE"}, **kwargs), make(*args, body=MUTATION, **kwargs)]


SCENARIOS = [
    SweepScenario("503-burst", lambda _: [Fault.respond(503, times=3)], Expect.deletes),
    SweepScenario(
        "429-with-retry-after",
        lambda _: _on_deletes(Fault.respond, 429, times=2, headers={"Retry-After": "1"}),
        Expect.deletes,
    ),
    SweepScenario(
        "503-on-every-delete",
        lambda _: _on_deletes(Fault.respond, 503, times=None),
        Expect.fails,
    ),
    SweepScenario(
        "reset-before-deletes-reach-gitlab",
        lambda _: _on_deletes(Fault.reset, times=None),
        Expect.fails,
    ),
    SweepScenario(
        "reset-after-gitlab-deleted",
        lambda _: _on_deletes(Fault.reset, after_forwarding=True, times=2),
        Expect.either,
    ),
]
TOKENS = ["access-token", "job-token"]
# Faults behind GitLab, in its registry: on distribution v3 the emulator's tag delete is one
# DELETE by tag, which a stopped registry fails (GitLab answers 400); on 2.8 the emulator edits
# the registry's storage instead. So these run on both.
REGISTRY_SCENARIOS = [
    SweepScenario(
        "registry-restarts-behind-gitlab",
        restart_after(2.0, path=TAG_DELETE),
        Expect.either,
    ),
]


@pytest.fixture
def seeded(gitlab_emulator: GitLabEmulator, pusher: ImagePusher) -> dict[str, str]:
    project = gitlab_emulator.add_project(REPO, default_branch="main", branches=["main", "live"])
    gitlab_emulator.add_repository(project)
    digests = {tag: pusher.push(REPO, tag) for tag in ("main", "live", "latest", "v1.0.0")}
    for tag in ("gone-1", "gone-2", "gone-3"):
        digests[tag] = pusher.push(REPO, tag)
    # An orphan on the default branch's digest: deleting it must leave main alone.
    digests["copy-of-main"] = pusher.tag(REPO, "main", "copy-of-main")
    return digests


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_sweep_under_fault_keeps_or_deletes_counts_exactly_and_a_rerun_finishes(
    run_cli: RunCli,
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    seeded: dict[str, str],
    scenario: SweepScenario,
    token: str,
) -> None:
    sweep_under_fault(run_cli, gitlab_emulator, registry, seeded, scenario, token)


@pytest.mark.both_registries
@pytest.mark.parametrize("scenario", REGISTRY_SCENARIOS, ids=lambda s: s.name)
def test_sweep_under_a_registry_fault_keeps_or_deletes_and_a_rerun_finishes(
    run_cli: RunCli,
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    seeded: dict[str, str],
    scenario: SweepScenario,
) -> None:
    sweep_under_fault(run_cli, gitlab_emulator, registry, seeded, scenario)


def sweep_under_fault(
    run_cli: RunCli,
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    seeded: dict[str, str],
    scenario: SweepScenario,
    kind: str = "access-token",
) -> None:
    """Every tag gone (orphans only) or at its digest, the summary exact, a rerun finishes."""
    project = gitlab_emulator.projects[min(gitlab_emulator.projects)]
    if kind == "job-token":
        token = gitlab_emulator.job_token(project, Role.developer)
        variable = "CI_JOB_TOKEN"
    else:
        token = gitlab_emulator.personal_token(project, Role.developer)
        variable = "GITLAB_TOKEN"
    upstream = gitlab_emulator.url.split("/")[2]
    with FaultProxy(upstream, lifetime=180) as proxy:
        proxy.add(*scenario.faults(registry))
        env = {
            "CI_API_V4_URL": f"http://{proxy.host}/api/v4",
            "CI_PROJECT_ID": str(project.id),
            variable: token,
        }

        first = run_cli("sweep", "--delete", "--concurrency", "2", "--json", env=env)

        wait_for(lambda: settled(proxy, registry), 60, "the proxy and registry to settle")
        after = state(registry)
        summary = json.loads(first.stdout)["summary"]
        gone = [tag for tag in ORPHANS if tag not in after]
        # Kept tags and orphans still present are exactly where they were.
        for tag, digest in after.items():
            assert digest == seeded[tag], tag
        assert all(tag in after for tag in KEPT)
        # The summary counts what really happened.
        assert summary["deleted"] + summary.get("absent", 0) == len(gone), summary
        assert summary["failed"] == len(ORPHANS) - len(gone), summary
        assert first.returncode == (1 if summary["failed"] else 0), first.stderr
        if scenario.expect is Expect.deletes:
            assert first.returncode == 0, first.stderr
        if scenario.expect is Expect.fails:
            assert first.returncode == 1, first.stderr
            assert gone == [], "a failed scenario deleted something"
        assert token not in first.stdout + first.stderr

        proxy.clear()
        again = run_cli("sweep", "--delete", "--json", env=env)

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["summary"]["deleted"] == len(ORPHANS) - len(gone)
    assert state(registry) == {tag: seeded[tag] for tag in KEPT}


@pytest.mark.parametrize("min_age", ["5m", "0m"])
def test_a_tag_pushed_while_the_sweep_runs_is_kept_by_the_grace_period(
    run_cli: RunCli,
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    pusher: ImagePusher,
    seeded: dict[str, str],
    tmp_path: Path,
    min_age: str,
) -> None:
    """A branch pipeline pushes `new-branch` just as the sweep lists tags, and the branch list
    the sweep reads does not show that branch yet: only --min-age stands between it and a
    deletion."""
    project = gitlab_emulator.projects[min(gitlab_emulator.projects)]
    token = gitlab_emulator.personal_token(project, Role.developer)
    pushed: dict[str, str] = {}

    def branch_pipeline_pushes() -> None:
        pushed["digest"] = push_created(pusher, tmp_path, REPO, "new-branch", datetime.now(UTC))

    upstream = gitlab_emulator.url.split("/")[2]
    with FaultProxy(upstream, lifetime=120) as proxy:
        # The tag listing: REST GET .../tags, or the GraphQL page of tags that a personal
        # token's sweep reads instead when age rules need creation times.
        proxy.add(
            Fault.call(
                branch_pipeline_pushes,
                methods={"GET", "POST"},
                path=r"/tags(\?|$)|/api/graphql",
            )
        )
        env = {
            "CI_API_V4_URL": f"http://{proxy.host}/api/v4",
            "CI_PROJECT_ID": str(project.id),
            "GITLAB_TOKEN": token,
            "REGISTRY_CLEANUP_MIN_AGE": min_age,
        }
        result = run_cli("sweep", "--delete", "--json", env=env)

    assert result.returncode == 0, result.stderr
    entries = {e["tag"]: e for e in json.loads(result.stdout)["tags"]}
    assert all(tag not in registry.tags(REPO) for tag in ORPHANS)
    if min_age == "5m":
        assert registry.digest(REPO, "new-branch") == pushed["digest"]
        assert entries["new-branch"]["status"] == "kept"
        assert "min-age" in entries["new-branch"]["reason"]
    else:  # without a grace period the new tag looks orphaned: the control case
        assert "new-branch" not in registry.tags(REPO)
