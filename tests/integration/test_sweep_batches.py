"""sweep --delete through GraphQL: each page of tags read again, then deleted by one mutation.

What must hold whatever the batching: a tag pushed again after planning is kept, a tag GitLab
will not delete is reported with GitLab's reason, and a lost answer never loses a tag's fate.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit.images import ImagePusher
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role

REPO = "group/app"
LIVE = ["live-0", "live-1", "live-2", "live-3", "main"]
GRAPHQL = "POST /api/graphql"
REST_GET = "GET /projects/:id/registry/repositories/:rid/tags/:tag"
REST_DELETE = "DELETE /projects/:id/registry/repositories/:rid/tags/:tag"


def _env(emulator: GitLabEmulator, project: Project, role: Role = Role.developer) -> dict[str, str]:
    return {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "GITLAB_TOKEN": emulator.personal_token(project, role),
    }


def _by_tag(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["tag"]: entry for entry in document["tags"]}


def _seed(emulator: GitLabEmulator, pusher: ImagePusher, orphans: int) -> Project:
    """main, four live branches with their tags (the branch-list guard wants at most 10
    orphans per branch), and ``orphans`` tags without a branch."""
    live = [f"live-{n}" for n in range(4)]
    project = emulator.add_project(REPO, branches=["main", *live])
    emulator.add_repository(project)
    pusher.push(REPO, "main")
    for name in live:
        pusher.tag(REPO, "main", name)
    for n in range(orphans):
        pusher.tag(REPO, "main", f"gone-{n:02}")
    return project


@pytest.mark.both_registries
@pytest.mark.parametrize("metadata_database", [False, True], ids=["offset-cursor", "name-cursor"])
@pytest.mark.parametrize("concurrency", ["16", "1"])
def test_orphans_go_a_page_at_a_time_two_requests_per_page(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    metadata_database: bool,
    concurrency: str,
) -> None:
    """45 orphans and 5 live tags: 3 pages of 20. Each page is read again and its orphans deleted
    with one mutation; no request per tag at all. One page at a time, too: without the metadata
    database the cursors are offsets, which deleting an earlier page first would shift."""
    gitlab_emulator.metadata_database = metadata_database
    project = _seed(gitlab_emulator, pusher, 45)

    result = run_cli(
        "sweep",
        "--delete",
        "--json",
        "--concurrency",
        concurrency,
        # With the metadata database a tag's age is its push time: just now, here.
        "--min-age",
        "0m",
        env=_env(gitlab_emulator, project),
    )

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == LIVE
    assert gitlab_emulator.graphql_fields == {
        "containerRepository": 3 + 3,
        "destroyContainerRepositoryTags": 3,
    }
    assert gitlab_emulator.count(REST_GET) == gitlab_emulator.count(REST_DELETE) == 0
    tags = _by_tag(json.loads(result.stdout))
    assert {tags[f"gone-{n:02}"]["status"] for n in range(45)} == {"deleted"}
    # Every deleted tag records the digest it had, so the sweep can be undone.
    digest = pusher.registry.digest(REPO, "main")
    assert {tags[f"gone-{n:02}"]["digest"] for n in range(45)} == {digest}


@pytest.mark.both_registries
def test_a_tag_pushed_again_after_planning_is_kept(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    project = _seed(gitlab_emulator, pusher, 3)
    newer: list[str] = []
    # The page is listed (1st GraphQL request), then a pipeline pushes gone-01 again before
    # the page is read again just ahead of the mutation (2nd).
    gitlab_emulator.faults[GRAPHQL] = [
        None,
        lambda: newer.append(pusher.push(REPO, "gone-01", seed="a newer pipeline")),
    ]

    result = run_cli("sweep", "--delete", "--json", env=_env(gitlab_emulator, project))

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["gone-01", *LIVE]
    assert pusher.registry.digest(REPO, "gone-01") == newer[0]
    tags = _by_tag(json.loads(result.stdout))
    assert tags["gone-01"]["status"] == "skipped"
    assert tags["gone-01"]["reason"].startswith(f"the tag now points at {newer[0]}")
    assert tags["gone-01"]["digest"] == newer[0]
    assert (tags["gone-00"]["status"], tags["gone-02"]["status"]) == ("deleted", "deleted")


def test_a_tag_gitlab_will_not_delete_gets_gitlabs_reason(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    """A Developer cannot read the protection rules, so the plan cannot know gone-01 is
    protected; the mutation leaves it out, and the single-tag delete says why."""
    project = _seed(gitlab_emulator, pusher, 3)
    gitlab_emulator.add_tag_rule(project, "gone-01")

    result = run_cli("sweep", "--delete", "--json", env=_env(gitlab_emulator, project))

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["gone-01", *LIVE]
    tags = _by_tag(json.loads(result.stdout))
    assert tags["gone-01"]["status"] == "skipped"
    assert tags["gone-01"]["reason"] == "GitLab refused: protected container tag"
    assert gitlab_emulator.graphql_fields["destroyContainerRepositoryTags"] == 1
    assert gitlab_emulator.count(REST_DELETE) == 1  # only the one left out


@pytest.mark.both_registries
def test_a_mutation_that_keeps_failing_falls_back_to_one_tag_at_a_time(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    """More 503s than python-gitlab's retry budget (5) for the mutation: each tag is then
    looked at alone and deleted over REST."""
    project = _seed(gitlab_emulator, pusher, 3)
    gitlab_emulator.faults[GRAPHQL] = [None, None, *[503] * 6]

    result = run_cli("sweep", "--delete", "--json", env=_env(gitlab_emulator, project))

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == LIVE
    assert gitlab_emulator.count(REST_GET) == 3
    assert gitlab_emulator.count(REST_DELETE) == 3
    tags = _by_tag(json.loads(result.stdout))
    assert {tags[f"gone-{n:02}"]["status"] for n in range(3)} == {"deleted"}


def test_an_answer_lost_after_the_mutation_deleted_counts_as_deleted(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    """The mutation fails for good (502 beyond the retry budget), yet the tags are gone by the
    time each is looked at (as when GitLab deleted them and the answer was lost): reported
    deleted, with their digests, so they can be restored; not absent."""
    project = _seed(gitlab_emulator, pusher, 2)
    digest = pusher.registry.digest(REPO, "main")

    def delete_behind_the_answer() -> None:
        for name in ("gone-00", "gone-01"):
            gitlab_emulator.store.delete_tag(REPO, name)

    gitlab_emulator.faults[GRAPHQL] = [None, None, *[502] * 6]
    gitlab_emulator.faults[REST_GET] = [delete_behind_the_answer]

    result = run_cli("sweep", "--delete", "--json", env=_env(gitlab_emulator, project))

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == LIVE
    tags = _by_tag(json.loads(result.stdout))
    for name in ("gone-00", "gone-01"):
        assert tags[name]["status"] == "deleted"
        assert tags[name]["digest"] == digest
    assert gitlab_emulator.count(REST_DELETE) == 0


def test_a_tag_whose_digest_graphql_did_not_know_is_checked_alone(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    """GraphQL's digest is nullable: a tag listed without one is neither guessed at nor kept
    with a made-up digest. Its digest is read over REST after the ref lists, so the refs are
    listed again (a digest read after them says nothing about them); then the single-tag path
    checks that digest and deletes the tag."""
    project = _seed(gitlab_emulator, pusher, 3)
    gitlab_emulator.unreadable_digests.add("gone-01")
    digest = pusher.registry.digest(REPO, "main")

    result = run_cli("sweep", "--delete", "--json", env=_env(gitlab_emulator, project))

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == LIVE
    tags = _by_tag(json.loads(result.stdout))
    assert tags["gone-01"]["status"] == "deleted"
    assert tags["gone-01"]["digest"] == digest
    assert "None" not in result.stdout
    assert gitlab_emulator.count(REST_GET) == 2  # the plan's digest, then the delete's check
    assert gitlab_emulator.count(REST_DELETE) == 1
    assert gitlab_emulator.count("GET /projects/:id/repository/branches") == 2
