"""The emulator's git tags route and GraphQL tag pages, as gitlabhq serves them.

Through real python-gitlab (REST) and plain HTTP (GraphQL), so what is checked is what goes
over the wire. Each test names the gitlabhq file it follows.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import gitlab
import pytest

from devkit.images import ImagePusher
from devkit.seeding import seed_tags
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role

QUERY = """
query($id: ContainerRepositoryID!, $first: Int, $after: String) {
  containerRepository(id: $id) {
    tags(first: $first, after: $after) {
      nodes { name digest createdAt }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""


def _client(emulator: GitLabEmulator, token: str, *, job: bool = False) -> gitlab.Gitlab:
    if job:
        return gitlab.Gitlab(emulator.url.removesuffix("/api/v4"), job_token=token)
    return gitlab.Gitlab(emulator.url.removesuffix("/api/v4"), private_token=token)


def _project_with_git_tags(emulator: GitLabEmulator) -> Project:
    project = emulator.add_project("group/app", branches=["main"])
    start = datetime(2026, 3, 1, tzinfo=UTC)
    emulator.add_git_tag(project, "v1.0", created_at=start)
    emulator.add_git_tag(project, "release/2024-03", created_at=start + timedelta(days=1))
    emulator.add_git_tag(project, "v2.0", created_at=start + timedelta(days=2), message="two")
    return project


# -- lib/api/tags.rb --------------------------------------------------------------------------


def test_git_tags_list_newest_first_for_a_reporter(gitlab_emulator: GitLabEmulator):
    project = _project_with_git_tags(gitlab_emulator)
    token = gitlab_emulator.personal_token(project, Role.reporter)

    tags = _client(gitlab_emulator, token).projects.get(project.id, lazy=True).tags.list(all=True)

    # order_by updated, sort desc by default; created_at only for the annotated tag.
    assert [t.name for t in tags] == ["v2.0", "release/2024-03", "v1.0"]
    assert [t.created_at is not None for t in tags] == [True, False, False]


def test_git_tags_take_a_job_token_of_the_same_project_since_18_3(
    gitlab_emulator: GitLabEmulator,
):
    project = _project_with_git_tags(gitlab_emulator)
    token = gitlab_emulator.job_token(project, Role.developer)
    tags = _client(gitlab_emulator, token, job=True).projects.get(project.id, lazy=True).tags

    assert len(tags.list(all=True)) == 3

    # Before 18.3 the route has no job_token_allowed: the token is ignored, the request is
    # anonymous and the private project is not found.
    gitlab_emulator.version = (18, 2)
    with pytest.raises(gitlab.GitlabListError) as raised:
        tags.list(all=True)
    assert raised.value.response_code == 404
    assert "404 Project Not Found" in str(raised.value)


def test_git_tags_refuse_a_job_token_of_another_project(gitlab_emulator: GitLabEmulator):
    project = _project_with_git_tags(gitlab_emulator)
    other = gitlab_emulator.add_project("group/other", branches=["main"])
    token = gitlab_emulator.job_token(other, Role.maintainer)
    project.members[gitlab_emulator.tokens[token].user] = Role.maintainer

    with pytest.raises(gitlab.GitlabListError) as raised:
        _client(gitlab_emulator, token, job=True).projects.get(project.id, lazy=True).tags.list()

    # lib/api/helpers.rb handle_job_token_failure! (Ci::JobToken::Scope: not on the allowlist).
    assert raised.value.response_code == 403
    assert "Authentication by CI/CD job token not allowed from other to app." in str(raised.value)


# -- ContainerRepositoryDetails.tags ----------------------------------------------------------


def _graphql(emulator: GitLabEmulator, headers: dict[str, str], variables: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{emulator.port}/api/graphql",
        data=json.dumps({"query": QUERY, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _walk(emulator: GitLabEmulator, token: str, gid: str, first: int) -> tuple[list[str], int]:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        status, body = _graphql(
            emulator,
            {"Authorization": f"Bearer {token}"},
            {"id": gid, "first": first, "after": after},
        )
        assert status == 200, body
        connection = body["data"]["containerRepository"]["tags"]
        pages += 1
        seen += [node["name"] for node in connection["nodes"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, pages
        after = connection["pageInfo"]["endCursor"]


@pytest.fixture
def tags_130(gitlab_emulator: GitLabEmulator, pusher: ImagePusher) -> tuple[str, str, list[str]]:
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    repository = gitlab_emulator.add_repository(project)
    names = [f"orphan-{n:03d}" for n in range(130)]
    seed_tags(pusher, "group/app", names, images=2)
    token = gitlab_emulator.personal_token(project, Role.reporter)
    return token, f"gid://gitlab/ContainerRepository/{repository.id}", names


def test_graphql_tags_asking_for_100_skip_80_with_the_metadata_database(
    gitlab_emulator: GitLabEmulator, tags_130: tuple[str, str, list[str]]
):
    token, gid, names = tags_130
    gitlab_emulator.metadata_database = True

    # container_repository_tags_resolver.rb asks the registry for `first` tags; the field's
    # max_page_size 20 keeps 20 of them; the end cursor is the registry's (its page's last).
    status, body = _graphql(gitlab_emulator, {"PRIVATE-TOKEN": token}, {"id": gid, "first": 100})
    connection = body["data"]["containerRepository"]["tags"]
    assert status == 200
    assert [n["name"] for n in connection["nodes"]] == names[:20]
    assert connection["pageInfo"] == {"endCursor": names[99], "hasNextPage": True}

    seen, pages = _walk(gitlab_emulator, token, gid, first=100)
    assert seen == names[:20] + names[100:120]
    assert pages == 2


@pytest.mark.parametrize("metadata_database", [True, False])
def test_graphql_tags_in_pages_of_20_see_every_tag(
    gitlab_emulator: GitLabEmulator, tags_130: tuple[str, str, list[str]], metadata_database: bool
):
    token, gid, names = tags_130
    gitlab_emulator.metadata_database = metadata_database

    seen, pages = _walk(gitlab_emulator, token, gid, first=20)

    assert seen == names
    assert pages == 7


def test_graphql_tags_without_the_metadata_database_page_all_tags_by_20(
    gitlab_emulator: GitLabEmulator, tags_130: tuple[str, str, list[str]]
):
    token, gid, names = tags_130
    gitlab_emulator.metadata_database = False

    # A plain Array: graphql-ruby's ArrayConnection pages it, 20 at most, nothing skipped.
    seen, pages = _walk(gitlab_emulator, token, gid, first=100)

    assert seen == names
    assert pages == 7


@pytest.mark.parametrize("header", ["JOB-TOKEN", "PRIVATE-TOKEN", "Authorization"])
def test_graphql_refuses_a_job_token(
    gitlab_emulator: GitLabEmulator, tags_130: tuple[str, str, list[str]], header: str
):
    _, gid, _ = tags_130
    token = gitlab_emulator.job_token(gitlab_emulator.projects[1], Role.maintainer)
    value = f"Bearer {token}" if header == "Authorization" else token

    status, body = _graphql(gitlab_emulator, {header: value}, {"id": gid, "first": 20})

    # graphql_controller.rb authorize_access_api!: a token was presented but found no user.
    assert status == 401
    assert body == {"errors": [{"message": "Invalid token"}]}


# -- lib/api/branches.rb ----------------------------------------------------------------------


def test_branches_take_a_job_token_of_the_same_project_since_18_3(
    gitlab_emulator: GitLabEmulator,
):
    project = gitlab_emulator.add_project("group/app", branches=["main", "feature/x"])
    token = gitlab_emulator.job_token(project, Role.reporter)
    branches = _client(gitlab_emulator, token, job=True).projects.get(project.id, lazy=True)

    assert [b.name for b in branches.branches.list(all=True)] == ["feature/x", "main"]

    gitlab_emulator.version = (18, 2)
    with pytest.raises(gitlab.GitlabListError) as raised:
        branches.branches.list(all=True)
    assert raised.value.response_code == 404  # the token is ignored: anonymous
