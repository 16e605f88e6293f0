"""Tag metadata in GraphQL pages of 20, GitLab's max_page_size (GraphQL through python-gitlab's
session against the emulator's /api/graphql), with REST as the fallback where GraphQL cannot
answer."""

from __future__ import annotations

import json
import urllib.request

import pytest

from devkit.images import ImagePusher
from devkit.seeding import seed_tags
from registry_cleanup.gitlab import Credentials, GitLabApi, TokenKind
from tests.fakes.gitlab_emulator import GitLabEmulator, Role

GRAPHQL = "POST /api/graphql"
TAG_DETAIL = "GET /projects/:id/registry/repositories/:rid/tags/:tag"


def _setup(emulator: GitLabEmulator, pusher: ImagePusher, count: int) -> dict[str, str]:
    project = emulator.add_project("group/app", branches=["main"])
    emulator.add_repository(project)
    emulator.personal_token(project, Role.reporter, user="reader")
    return seed_tags(pusher, "group/app", [f"tag-{n:04d}" for n in range(count)], images=3)


def _client(emulator: GitLabEmulator, kind: TokenKind = TokenKind.private) -> GitLabApi:
    project = emulator.projects[1]
    if kind is TokenKind.private:
        token = emulator.personal_token(project, Role.reporter)
    else:
        token = emulator.job_token(project, Role.reporter)
    return GitLabApi(emulator.url, "group/app", Credentials(kind, token), max_retries=0)


@pytest.mark.parametrize("metadata_database", [True, False], ids=["gitlab.com", "third-party"])
@pytest.mark.parametrize("count", [1, 20, 21, 40, 41, 60, 61, 99])
def test_reading_from_both_ends_sees_every_tag_once_the_ends_meet(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, metadata_database: bool, count: int
) -> None:
    """Page 1, then one page from each end per round until they overlap: every tag, wherever
    the page boundaries fall, in at most N/20 + 2 pages."""
    gitlab_emulator.metadata_database = metadata_database
    digests = _setup(gitlab_emulator, pusher, count)
    client = _client(gitlab_emulator)
    [repository] = client.repositories()

    listing = client.pages.listing(repository)

    assert listing is not None
    assert listing.note is None
    pages = listing.pages
    assert {tag.name: tag.digest for page in pages for tag in page.tags} == digests
    rounds = (count - 20) // 40 + 1 if count > 20 else 0
    assert len(pages) == 1 + 2 * rounds <= -(-count // 20) + 2
    assert gitlab_emulator.tag_sorts["NAME_DESC"] == rounds


@pytest.mark.parametrize("metadata_database", [True, False], ids=["gitlab.com", "third-party"])
@pytest.mark.parametrize("count", [41, 99])
def test_a_gitlab_that_ignores_name_desc_is_read_in_one_chain_and_says_so(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, metadata_database: bool, count: int
) -> None:
    """That the two ends met is concluded from the names' order, so the order is checked: pages
    "from the end" that come in NAME_ASC would otherwise look as if the ends had met after the
    second round and leave the middle unread."""
    gitlab_emulator.metadata_database = metadata_database
    gitlab_emulator.tag_sort_ignored = True
    digests = _setup(gitlab_emulator, pusher, count)
    client = _client(gitlab_emulator)
    [repository] = client.repositories()

    listing = client.pages.listing(repository)

    assert listing is not None
    assert {tag.name: tag.digest for page in listing.pages for tag in page.tags} == digests
    assert listing.note is not None
    assert "did not return the tags in the order asked for" in listing.note
    assert gitlab_emulator.tag_sorts["NAME_DESC"] == 1  # one round, then one chain


@pytest.mark.parametrize("metadata_database", [True, False], ids=["gitlab.com", "third-party"])
def test_every_tag_in_pages_of_20_matching_rest(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, metadata_database: bool
):
    """With the registry's metadata database (GitLab.com) the cursor is the registry's: asking
    for more than 20 would skip the rest of each page. Without it graphql-ruby pages by offset."""
    gitlab_emulator.metadata_database = metadata_database
    digests = _setup(gitlab_emulator, pusher, 250)
    client = _client(gitlab_emulator)
    [repository] = client.repositories()

    paged = client.paged_tag_details(repository)

    assert paged is not None
    assert {name: d.digest for name, d in paged.items()} == digests
    assert gitlab_emulator.count(GRAPHQL) == 13  # 250 tags, 20 per page
    rest = client.registry.tag(repository, "tag-0123")
    assert rest is not None
    assert paged["tag-0123"] == rest
    if not metadata_database:  # the config's created; with the database, each push's time
        assert len({d.created_at for d in paged.values()}) == 3  # three images, three times


def test_without_graphql_tag_details_fall_back_to_one_rest_request_per_tag(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    digests = _setup(gitlab_emulator, pusher, 30)
    gitlab_emulator.graphql_enabled = False
    client = _client(gitlab_emulator)
    [repository] = client.repositories()

    found = client.tag_details(repository, ["tag-0001", "tag-0002", "missing"], concurrency=2)

    assert {name: d.digest for name, d in found.items()} == {
        "tag-0001": digests["tag-0001"],
        "tag-0002": digests["tag-0002"],
    }
    assert gitlab_emulator.count(GRAPHQL) == 1  # tried once, 404, then never again
    assert gitlab_emulator.count(TAG_DETAIL) == 3
    client.tag_details(repository, ["tag-0003"], concurrency=1)
    assert gitlab_emulator.count(GRAPHQL) == 1


def test_a_job_token_never_tries_graphql(gitlab_emulator: GitLabEmulator, pusher: ImagePusher):
    _setup(gitlab_emulator, pusher, 5)
    client = _client(gitlab_emulator, TokenKind.job)
    [repository] = client.repositories()

    assert client.paged_tag_details(repository) is None
    assert len(client.tag_details(repository, ["tag-0001"], concurrency=1)) == 1
    assert gitlab_emulator.count(GRAPHQL) == 0


def _post(emulator: GitLabEmulator, token: str, body: dict[str, object]) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 (the emulator on loopback)
        emulator.url.removesuffix("/v4") + "/graphql",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_emulator_refuses_fields_outside_gitlabs_schema(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    _setup(gitlab_emulator, pusher, 3)
    project = gitlab_emulator.projects[1]
    token = gitlab_emulator.personal_token(project, Role.reporter)
    gid = f"gid://gitlab/ContainerRepository/{project.repositories[0].id}"

    status, body = _post(
        gitlab_emulator,
        token,
        {"query": f'{{ containerRepository(id: "{gid}") {{ tags {{ nodes {{ size }} }} }} }}'},
    )
    assert status == 200
    assert "data" not in body
    assert "size" in body["errors"][0]["message"]
    assert body["errors"][0]["locations"]

    backwards = "tags(last: 5) { nodes { name } }"
    query = f'{{ containerRepository(id: "{gid}") {{ {backwards} }} }}'
    status, body = _post(gitlab_emulator, token, {"query": query})
    assert "last" in body["errors"][0]["message"]

    status, body = _post(
        gitlab_emulator,
        token,
        {"query": '{ project(fullPath: "group/app") { containerRepositories { nodes { id } } } }'},
    )
    assert body == {"data": {"project": {"containerRepositories": {"nodes": [{"id": gid}]}}}}

    status, body = _post(gitlab_emulator, "wrong", {"query": "{ __typename }"})
    assert status == 401


def test_a_tag_detail_is_retried_after_a_gateway_error_but_a_500_is_an_answer(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    """A 502 or 503 comes from what stands in front of GitLab and passes; GitLab's own 500 for
    a tag detail is what it answers for an image index it cannot read (tag.rb), every time:
    asked once, and told as a detail with neither digest nor creation time."""
    digests = _setup(gitlab_emulator, pusher, 2)
    project = gitlab_emulator.projects[1]
    token = gitlab_emulator.job_token(project, Role.reporter)
    client = GitLabApi(gitlab_emulator.url, "group/app", Credentials(TokenKind.job, token))
    [repository] = client.repositories()
    gitlab_emulator.faults[TAG_DETAIL] = [502, 503]

    found = client.registry.tag(repository, "tag-0000")

    assert found is not None
    assert found.digest == digests["tag-0000"]
    assert gitlab_emulator.count(TAG_DETAIL) == 3
    gitlab_emulator.faults[TAG_DETAIL] = [500]

    unreadable = client.registry.tag(repository, "tag-0001")

    assert unreadable is not None
    assert (unreadable.digest, unreadable.created_at) == ("", None)
    assert gitlab_emulator.count(TAG_DETAIL) == 4
