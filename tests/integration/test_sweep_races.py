"""The sweep while the world moves: pipelines push, branches come, go and come back.

The sweep's invariant (engine/sweep.py): a tag is deleted only if its digest was read before the ref
lists that made it an orphan, and it still points at that digest when deleted. These tests drive
the world from the emulator at exact moments of a sweep ("right after the branch list was
answered": GitLabEmulator.after_answer), on both token paths (an access token reads and deletes
through GraphQL, a job token through REST) and both cursor kinds (with and without the registry
metadata database), and then check what a user would:

- every tag whose ref exists at the end, with the digest that ref's pipeline pushed, is there;
- every orphan known at the start, and not pushed again, is gone.

Each moment is run several times on fresh projects: the sweep deletes with 16 requests in flight,
so an interleaving that loses a tag may happen only sometimes. Pipelines' images carry an old
creation time (devkit.images.CREATED), as reproducible builds do, and the sweeps run with
``--min-age 0m``, so no grace period can hide a broken invariant.

Not tested here, because no client can close it: the one round trip between the last digest
check and the delete (GitLab has no conditional delete; docs/sweep.md, "Races").
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from devkit.seeding import EPOCH, copy_repository, link_tag, seed_tags
from registry_cleanup.domain.refs import slugify
from tests.conftest import PushedOnce, RunCli, ci_env
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.fakes.registry_metadata import set_pushed_at

BRANCHES = "GET /projects/:id/repository/branches"
GIT_TAGS = "GET /projects/:id/repository/tags"
GRAPHQL = "POST /api/graphql"
REST_TAGS = "GET /projects/:id/registry/repositories/:rid/tags"
REST_TAG = "GET /projects/:id/registry/repositories/:rid/tags/:tag"
LIVE = ["main", "live-0", "live-1", "live-2", "live-3", "doomed-a", "doomed-b"]
# More than one GraphQL page (20), so the two-ended read and page deletes both run.
ORPHANS = [f"gone-{n:02}" for n in range(30)]
# The images every round's repository starts with; no project's.
TEMPLATE = "seed/template"
# Fresh projects per moment and path. `./dev test --quick` (a local loop) drives each once;
# every other run, CI's included, three times.
REPEATS = 1 if os.environ.get("REGISTRY_CLEANUP_QUICK_TESTS") else 3


# What pipelines and people do at the chosen moment: (branch, its image's tag).
CREATED_BRANCHES = [
    ("feature/x", "feature-x"),  # deleted last month, back now
    ("gone-07", "gone-07"),  # an orphan's name, taken again
    ("new/y", "new-y"),  # a branch nobody had before
    # One that sorts first: every tag after it moves one place, some onto the next page.
    ("a/first", "a-first"),
]
DELETED_BRANCH = "doomed-a"


def _seed_template(pusher: ImagePusher) -> dict[str, str]:
    """TEMPLATE's tags, and each created branch's new image under ``next-<slug>``, untagged
    again once pushed: the image stays in the repository for a round's pipeline to tag."""
    digests = seed_tags(pusher, TEMPLATE, LIVE, images=len(LIVE))
    # feature/x was deleted last month; its image is an orphan like the others.
    seed_tags(pusher, TEMPLATE, ["feature-x", *ORPHANS], images=2)
    for branch, slug in CREATED_BRANCHES:
        # A new image with an old creation time, as a reproducible build makes.
        digests[f"next-{slug}"] = pusher.push(TEMPLATE, f"next-{slug}", seed=f"{branch} again")
        shutil.rmtree(pusher.registry.tags_directory(TEMPLATE) / f"next-{slug}")
    return digests


@dataclass
class World:
    """One project's refs and the digest each live ref's pipeline last pushed."""

    emulator: GitLabEmulator
    registry: LocalRegistry
    # Each created branch's new image (tag -> digest), already in the repository.
    created: dict[str, str]
    project: Project
    repository: str
    pushed: dict[str, str] = field(default_factory=dict)
    repushed: set[str] = field(default_factory=set)

    def create_branch_and_push(self, branch: str, slug: str) -> None:
        """A pipeline of a new (or re-created) branch: the ref exists, then its image is
        pushed. Its blobs and manifest are in the repository already (_seed_template), so the
        push is what a registry records for it: the tag's links, written on disk."""
        self.project.branches.append(branch)
        self.pushed[slug] = self.created[slug]
        link_tag(self.registry, self.repository, slug, self.pushed[slug])
        self.repushed.add(slug)

    def env(self, graphql: bool) -> dict[str, str]:
        return _env(self.emulator, self.project, graphql)

    def move(self) -> None:
        """Everything pipelines and people do at the chosen moment."""
        for branch, slug in CREATED_BRANCHES:
            self.create_branch_and_push(branch, slug)
        self.project.branches.remove(DELETED_BRANCH)


def _worlds(
    emulator: GitLabEmulator, registry: LocalRegistry, pushed_once: PushedOnce, count: int
) -> list[World]:
    """``count`` projects with the same images and tags, one per round of a test: TEMPLATE,
    pushed once (conftest.pushed_once), copied on disk to each round's repository
    (devkit.seeding), what a cross-repository mount and a push of every tag leave behind."""
    digests = pushed_once(registry, _seed_template)
    live = {tag: digests[tag] for tag in LIVE}
    created = {slug: digests[f"next-{slug}"] for _, slug in CREATED_BRANCHES}
    worlds = []
    for round_ in range(count):
        repository = f"group/app-{round_}"
        copy_repository(registry, TEMPLATE, repository)
        project = emulator.add_project(repository, branches=list(LIVE))
        emulator.add_repository(project)
        worlds.append(World(emulator, registry, created, project, repository, pushed=dict(live)))
    return worlds


# Moments before any delete: the tag listing, the first branch and git tag lists, and a second
# branch list where a sweep makes one. The route's n-th answer (0 first).
MOMENTS: dict[str, Callable[[bool], tuple[str, int]]] = {
    "after-the-tag-list": lambda graphql: (GRAPHQL if graphql else REST_TAGS, 0),
    "after-the-branch-list": lambda graphql: (BRANCHES, 0),
    "after-the-git-tag-list": lambda graphql: (GIT_TAGS, 0),
    "after-the-second-branch-list": lambda graphql: (BRANCHES, 1),
}


def _env(emulator: GitLabEmulator, project: Project, graphql: bool) -> dict[str, str]:
    env = {"CI_API_V4_URL": emulator.url, "CI_PROJECT_ID": str(project.id)}
    if graphql:
        env["GITLAB_TOKEN"] = emulator.personal_token(project, Role.developer)
    else:
        env["CI_JOB_TOKEN"] = emulator.job_token(project, Role.developer)
    return env


def _check(world: World, result_stdout: str) -> None:
    registry = world.registry
    project = world.project
    for branch in project.branches:
        slug = slugify(branch)
        assert registry.digest(world.repository, slug) == world.pushed[slug], (
            f"{slug}: the tag of live branch {branch!r} was deleted or changed\n{result_stdout}"
        )
    left = set(registry.tags(world.repository))
    for orphan in ORPHANS:
        if orphan not in world.repushed:
            assert orphan not in left, f"{orphan}: an orphan known at the start was kept"


@pytest.mark.parametrize("moment", list(MOMENTS))
@pytest.mark.parametrize("metadata_database", [False, True], ids=["offset-cursor", "name-cursor"])
@pytest.mark.parametrize("graphql", [True, False], ids=["access-token", "job-token"])
def test_live_refs_keep_their_images_while_the_world_moves(
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    pushed_once: PushedOnce,
    run_cli: RunCli,
    moment: str,
    metadata_database: bool,
    graphql: bool,
) -> None:
    gitlab_emulator.metadata_database = metadata_database
    # GraphQL's digest is nullable (GitLab could not read the manifest just then, or an image
    # index it asks for in a form the registry does not serve): feature-x's is unknown to the
    # tag pages, so its digest must come from somewhere before the ref lists too.
    gitlab_emulator.unreadable_digests.add("feature-x")
    for world in _worlds(gitlab_emulator, registry, pushed_once, REPEATS):
        route, index = MOMENTS[moment](graphql)
        gitlab_emulator.after_answer = {route: [None] * index + [world.move]}

        result = run_cli("sweep", "--delete", "--json", "--min-age", "0m", env=world.env(graphql))

        assert result.returncode == 0, result.stderr
        moved = not gitlab_emulator.after_answer[route]
        if not moved:
            # The sweep made no such request (one branch list only): the world moves after it.
            world.move()
        _check(world, result.stdout)


def test_a_reproducible_rebuild_is_not_protected_by_its_age_but_by_the_invariant(
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    pushed_once: PushedOnce,
    run_cli: RunCli,
) -> None:
    """The default --min-age (5m) with a job token, without the metadata database: the image a
    re-created branch pushes right after the branch list carries its sources' old time, so the
    grace period does not keep it; only the digest read before the ref lists does."""
    (world,) = _worlds(gitlab_emulator, registry, pushed_once, 1)
    gitlab_emulator.after_answer = {BRANCHES: [world.move]}

    result = run_cli("sweep", "--delete", "--json", env=world.env(graphql=False))

    assert result.returncode == 0, result.stderr
    _check(world, result.stdout)
    tags = {entry["tag"]: entry for entry in json.loads(result.stdout)["tags"]}
    assert tags["feature-x"]["status"] == "kept", tags["feature-x"]


@pytest.mark.parametrize("metadata_database", [False, True], ids=["offset-cursor", "name-cursor"])
def test_a_listing_is_complete_only_when_gitlab_says_it_ended(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, metadata_database: bool
) -> None:
    """A GitLab that answers NAME_DESC pages in NAME_ASC order: the pages "from the end" look
    as if the two ends met after one round, and everything past the second page would go
    unseen, so --keep-n would keep the newest of the tags seen, not of the tags there. The sweep
    checks the order, reads one chain to GitLab's last page instead, and says so."""
    gitlab_emulator.metadata_database = metadata_database
    gitlab_emulator.tag_sort_ignored = True
    orphans = [f"gone-{n:02}" for n in range(60)]
    project = gitlab_emulator.add_project("group/app", branches=list(LIVE))
    gitlab_emulator.add_repository(project)
    seed_tags(pusher, "group/app", LIVE)
    # Three images an hour apart, round-robin: gone-02, -05, -08, -11, -14 are the newest five.
    seed_tags(pusher, "group/app", orphans, images=3)
    for n, name in enumerate(orphans):  # the metadata database dates a tag by its push
        set_pushed_at(pusher.registry, "group/app", name, EPOCH + timedelta(hours=n % 3))

    env = _env(gitlab_emulator, project, graphql=True)

    result = run_cli("sweep", "--delete", "--json", "--keep-n", "5", "--min-age", "0m", env=env)

    assert result.returncode == 0, result.stderr
    newest = ["gone-02", "gone-05", "gone-08", "gone-11", "gone-14"]
    assert pusher.registry.tags("group/app") == sorted([*LIVE, *newest])
    assert "did not return the tags in the order asked for" in result.output


# The group API takes no job token (lib/api/group_container_repositories.rb): --group is swept
# with an access token only.
PATHS = [
    pytest.param(mode, graphql, id=f"{mode}-{'access' if graphql else 'job'}-token")
    for mode in ("apply", "via-registry", "group")
    for graphql in (True, False)
    if graphql or mode != "group"
]


@pytest.mark.parametrize("metadata_database", [False, True], ids=["offset-cursor", "name-cursor"])
@pytest.mark.parametrize(("mode", "graphql"), PATHS)
def test_every_other_path_keeps_the_invariant(
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    pushed_once: PushedOnce,
    run_cli: RunCli,
    tmp_path: Path,
    mode: str,
    metadata_database: bool,
    graphql: bool,
) -> None:
    """The same world, moving right after the (first) branch list of the run that deletes:
    `--apply` of a plan made before, `--via registry` (regctl deletes), and `--group`."""
    gitlab_emulator.metadata_database = metadata_database
    gitlab_emulator.unreadable_digests.add("feature-x")
    group = gitlab_emulator.add_group("group") if mode == "group" else None
    for round_, world in enumerate(_worlds(gitlab_emulator, registry, pushed_once, REPEATS)):
        env = {**ci_env(registry), **world.env(graphql)}
        args = ["--min-age", "0m", "--json"]
        if mode == "apply":
            plan = tmp_path / f"plan-{round_}.json"
            made = run_cli("sweep", "--plan-out", str(plan), *args, env=env)
            assert made.returncode == 0, made.stderr
            args = ["--apply", str(plan), "--json"]
        elif mode == "via-registry":
            args = ["--delete", "--via", "registry", *args]
        else:
            assert group is not None
            env["GITLAB_TOKEN"] = gitlab_emulator.group_token(group, Role.maintainer)
            env.pop("CI_PROJECT_ID")
            args = ["--group", "group", "--include-project", world.repository, "--delete", *args]
        gitlab_emulator.after_answer = {BRANCHES: [world.move]}

        result = run_cli("sweep", *args, env=env)

        assert result.returncode == 0, result.stderr
        assert not gitlab_emulator.after_answer[BRANCHES], "the world did not move"
        _check(world, result.stdout)
