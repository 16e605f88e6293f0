"""registry_cleanup.gitlab (python-gitlab) against the GitLab API emulator and the real registry."""

from __future__ import annotations

import pytest

from devkit.images import ImagePusher
from registry_cleanup.gitlab import (
    Credentials,
    GitLabApi,
    GitLabApiError,
    GitLabGroupApi,
    TokenKind,
)
from tests.fakes.gitlab_emulator import GitLabEmulator, Role


def api(emulator: GitLabEmulator, token: str, project: str, kind=TokenKind.private) -> GitLabApi:
    return GitLabApi(emulator.url, project, Credentials(kind, token), max_retries=0)


def test_branches_follow_pagination_reading_each_page_once(gitlab_emulator: GitLabEmulator):
    names = [f"feature/{n:03d}" for n in range(230)] + ["main"]
    project = gitlab_emulator.add_project("group/app", branches=names)
    token = gitlab_emulator.personal_token(project, Role.reporter)

    branches = list(api(gitlab_emulator, token, "group/app").refs.branches())

    assert sorted(b.name for b in branches) == sorted(names)
    assert [b.name for b in branches if b.default] == ["main"]
    # 231 branches at 100 per page: exactly three requests.
    assert gitlab_emulator.count("GET /projects/:id/repository/branches") == 3


def test_tags_details_and_single_delete_keep_other_tags_on_the_digest(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    gitlab_emulator.add_repository(project)
    digest = pusher.push("group/app", "feature-a")
    pusher.tag("group/app", "feature-a", "feature-b")
    token = gitlab_emulator.personal_token(project, Role.developer)
    client = api(gitlab_emulator, token, str(project.id))

    [repository] = client.repositories()
    assert repository.location == f"{pusher.registry.host}/group/app"
    assert sorted(client.registry.tag_names(repository)) == ["feature-a", "feature-b"]
    detail = client.registry.tag(repository, "feature-a")
    assert detail is not None
    assert detail.digest == digest
    assert detail.created_at is not None
    assert client.registry.tag(repository, "nope") is None

    client.registry.delete_tag(repository, "feature-a")

    assert pusher.registry.tags("group/app") == ["feature-b"]
    assert pusher.registry.digest("group/app", "feature-b") == digest


def test_job_token_reads_registry_but_not_the_projects_api(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push("group/app", "x")
    token = gitlab_emulator.job_token(project, Role.developer)
    client = api(gitlab_emulator, token, str(project.id), TokenKind.job)

    [repository] = client.repositories()
    assert list(client.registry.tag_names(repository)) == ["x"]
    with pytest.raises(GitLabApiError, match="CI job token") as raised:
        client.settings.project()
    assert raised.value.status == 404  # anonymous to lib/api/projects.rb: a private project
    assert token not in str(raised.value)


def test_forbidden_names_the_role_needed(gitlab_emulator: GitLabEmulator, pusher: ImagePusher):
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push("group/app", "x")
    token = gitlab_emulator.personal_token(project, Role.developer)
    client = api(gitlab_emulator, token, "group/app")
    [repository] = client.repositories()

    with pytest.raises(GitLabApiError, match="needs at least the Maintainer role") as raised:
        client.registry.delete(repository)

    assert raised.value.status == 403
    assert pusher.registry.tags("group/app") == ["x"]


def test_protected_tag_rule_refuses_single_delete(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    gitlab_emulator.add_repository(project)
    # A Maintainer is below an Owner rule: GitLab refuses (for_delete_and_access).
    gitlab_emulator.add_tag_rule(project, r"release-.*", minimum_access_level_for_delete="owner")
    pusher.push("group/app", "release-1")
    client = api(gitlab_emulator, gitlab_emulator.personal_token(project, Role.maintainer), "1")
    [repository] = client.repositories()

    rules = client.protected_tag_rules()
    assert rules is not None
    assert [(r.tag_name_pattern, r.minimum_access_level_for_delete) for r in rules] == [
        (r"release-.*", "owner")
    ]
    assert client.settings.caller_access_level() == 40
    with pytest.raises(GitLabApiError, match="cannot delete protected tag"):
        client.registry.delete_tag(repository, "release-1")
    assert pusher.registry.tags("group/app") == ["release-1"]


def test_wrong_token_is_401_without_echoing_it(gitlab_emulator: GitLabEmulator):
    gitlab_emulator.add_project("group/app", branches=["main"])
    with pytest.raises(GitLabApiError, match="401") as raised:
        list(api(gitlab_emulator, "glpat-not-a-real-token", "group/app").refs.branches())
    assert "glpat-not-a-real-token" not in str(raised.value)


def test_a_job_token_sent_as_an_access_token_is_refused(gitlab_emulator: GitLabEmulator):
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    token = gitlab_emulator.job_token(project, Role.maintainer)
    with pytest.raises(GitLabApiError, match="GITLAB_TOKEN was rejected"):
        list(api(gitlab_emulator, token, "group/app", TokenKind.private).refs.branches())


def test_a_groups_projects_share_its_client_and_so_its_rate_limit_budget(
    gitlab_emulator: GitLabEmulator,
):
    """One session and one RateLimit budget for the whole group sweep, not one per project."""
    group = gitlab_emulator.add_group("acme")
    project = gitlab_emulator.add_project("acme/app", branches=["main"])
    token = gitlab_emulator.group_token(group, Role.maintainer)
    groups = GitLabGroupApi(gitlab_emulator.url, "acme", Credentials(TokenKind.private, token))

    first = groups.project_api(project.id, [])
    second = groups.project_api(project.id, [])

    assert first.client is second.client is groups.client
    assert [branch.name for branch in first.refs.branches()] == ["main"]
