"""The emulator's container registry, projects and protection rule routes, as gitlabhq has them.

Each test drives the emulator through real python-gitlab (or its raw HTTP calls) and names the
gitlabhq file the behaviour comes from; tests/fakes/ cites the exact lines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gitlab
import pytest
from gitlab.v4.objects import ProjectRegistryRepository

from devkit.images import ImagePusher
from devkit.local_registry import MANIFEST_ACCEPT
from tests.fakes.container_repositories_api import BULK_DELETE_MESSAGE
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.fakes.registry_metadata import set_pushed_at
from tests.fakes.seed import push_created

REPO = "group/app"


def _gitlab(emulator: GitLabEmulator, token: str, *, job: bool = False) -> gitlab.Gitlab:
    base = emulator.url.removesuffix("/api/v4")
    if job:
        return gitlab.Gitlab(base, job_token=token)
    return gitlab.Gitlab(base, private_token=token)


def _project(emulator: GitLabEmulator) -> Project:
    project = emulator.add_project(REPO, branches=["main"])
    emulator.add_repository(project)
    return project


def _repository(emulator: GitLabEmulator, token: str, *, job: bool = False) -> Any:
    project = _gitlab(emulator, token, job=job).projects.get(1, lazy=True)
    [repository] = project.repositories.list(all=True)
    return repository


def _body(error: gitlab.GitlabError) -> Any:
    return json.loads(error.response_body or b"null")


# -- bulk delete: cleanup_tags_base_service.rb, lib/api/project_container_repositories.rb ----


def test_bulk_delete_pastes_the_regex_between_anchors_without_a_group(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    _project(gitlab_emulator)
    for tag in ("review-1", "feature-2", "old-feature-3", "keep-me", "latest"):
        pusher.push(REPO, tag)
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.maintainer)
    repository = _repository(gitlab_emulator, token)

    # "\A#{regex}\z": \Areview-.*|feature-.*\z is "starts with review-" or "ends in feature-..."
    repository.tags.delete_in_bulk(name_regex_delete="review-.*|feature-.*")

    assert pusher.registry.tags(REPO) == ["keep-me", "latest"]


def test_bulk_delete_with_a_grouped_regex_means_the_whole_tag(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    _project(gitlab_emulator)
    for tag in ("review-1", "feature-2", "old-feature-3", "latest"):
        pusher.push(REPO, tag)
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.maintainer)

    _repository(gitlab_emulator, token).tags.delete_in_bulk(
        name_regex_delete="(?:review-.*|feature-.*)"
    )

    assert pusher.registry.tags(REPO) == ["latest", "old-feature-3"]


def test_bulk_delete_refuses_what_re2_cannot_compile(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    _project(gitlab_emulator)
    pusher.push(REPO, "review-1")
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.maintainer)

    with pytest.raises(gitlab.GitlabDeleteError) as raised:
        # A lookahead is fine for Python's re, not for RE2 (untrusted_regexp: true).
        _repository(gitlab_emulator, token).tags.delete_in_bulk(name_regex_delete="(?=review).*")

    assert raised.value.response_code == 400
    assert _body(raised.value)["error"].startswith("name_regex_delete is an invalid regexp")
    assert pusher.registry.tags(REPO) == ["review-1"]


def test_bulk_delete_once_an_hour_with_gitlabs_exact_body(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    _project(gitlab_emulator)
    pusher.push(REPO, "tmp-1")
    now = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    gitlab_emulator.clock = lambda: now
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.maintainer)
    repository = _repository(gitlab_emulator, token)
    repository.tags.delete_in_bulk(name_regex_delete="nothing")

    with pytest.raises(gitlab.GitlabDeleteError) as raised:
        repository.tags.delete_in_bulk(name_regex_delete=".*")

    # render_api_error!(message, 400): {"message": message}, no "400 Bad request - " prefix.
    assert raised.value.response_code == 400
    assert _body(raised.value) == {"message": BULK_DELETE_MESSAGE}
    assert pusher.registry.tags(REPO) == ["tmp-1"]
    gitlab_emulator.clock = lambda: now + 3601  # the lease's hour is over
    repository.tags.delete_in_bulk(name_regex_delete=".*")
    assert pusher.registry.tags(REPO) == []


@pytest.mark.parametrize(
    ("metadata_database", "left"),
    # newest first by push time: c (now), d, b, a: keep c, delete b and a (older than 7 days).
    # by the config's "created" (third_party/cleanup_tags_service): d, c, b, a: keep d only.
    [(True, ["c", "d"]), (False, ["d"])],
)
def test_bulk_delete_ages_tags_by_push_time_only_with_the_metadata_database(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    tmp_path: Path,
    metadata_database: bool,
    left: list[str],
):
    _project(gitlab_emulator)
    gitlab_emulator.metadata_database = metadata_database
    now = datetime.now(UTC)
    for tag, days in (("a", 20), ("b", 10), ("c", 8), ("d", 1)):
        push_created(pusher, tmp_path, REPO, tag, now - timedelta(days=days))
    set_pushed_at(pusher.registry, REPO, "c", now)  # re-pushed just now
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.maintainer)

    _repository(gitlab_emulator, token).tags.delete_in_bulk(
        name_regex_delete=".*", keep_n=1, older_than="7d"
    )

    assert pusher.registry.tags(REPO) == left


# -- protected container tags: delete_tags_service.rb, protection/tag_rule.rb ---------------


def test_protection_rules_match_anywhere_in_the_name_for_callers_below_the_level(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    project = _project(gitlab_emulator)
    for tag in ("pre-release-1", "stable-2", "other"):
        pusher.push(REPO, tag)
    gitlab_emulator.add_tag_rule(project, "release")  # delete: maintainer
    gitlab_emulator.add_tag_rule(project, "^stable", minimum_access_level_for_delete="owner")
    developer = _repository(
        gitlab_emulator, gitlab_emulator.personal_token(project, Role.developer)
    )
    maintainer = _repository(
        gitlab_emulator, gitlab_emulator.personal_token(project, Role.maintainer)
    )

    with pytest.raises(gitlab.GitlabDeleteError) as raised:
        developer.tags.delete("pre-release-1")  # UntrustedRegexp#match?: unanchored
    assert raised.value.response_code == 403
    assert _body(raised.value) == {"message": "403 Forbidden - cannot delete protected tag(s)"}
    with pytest.raises(gitlab.GitlabDeleteError):
        maintainer.tags.delete("stable-2")  # the rule wants an owner
    developer.tags.delete("other")
    maintainer.tags.delete("pre-release-1")  # Maintainer is not below "maintainer"

    assert pusher.registry.tags(REPO) == ["stable-2"]


def test_protection_rules_api_exists_from_18_7_for_maintainers_only(
    gitlab_emulator: GitLabEmulator,
):
    project = _project(gitlab_emulator)
    gitlab_emulator.add_tag_rule(project, "release-.*")
    gitlab_emulator.add_tag_rule(
        project, "v.*", minimum_access_level_for_delete=None, minimum_access_level_for_push=None
    )
    path = f"/projects/{project.id}/registry/protection/tag/rules"
    maintainer = _gitlab(gitlab_emulator, gitlab_emulator.personal_token(project, Role.maintainer))

    rules = maintainer.http_get(path)
    assert isinstance(rules, list)
    assert [r["tag_name_pattern"] for r in rules] == ["release-.*"]  # .mutable only
    developer = _gitlab(gitlab_emulator, gitlab_emulator.personal_token(project, Role.developer))
    with pytest.raises(gitlab.GitlabHttpError) as raised:
        developer.http_get(path)
    assert raised.value.response_code == 403
    job = _gitlab(gitlab_emulator, gitlab_emulator.job_token(project, Role.maintainer), job=True)
    with pytest.raises(gitlab.GitlabAuthenticationError) as unauthorized:
        job.http_get(path)  # no job_token_allowed: anonymous, and authenticate! refuses
    assert unauthorized.value.response_code == 401

    gitlab_emulator.version = (18, 6)
    with pytest.raises(gitlab.GitlabHttpError) as missing:
        maintainer.http_get(path)
    assert missing.value.response_code == 404
    assert _body(missing.value) == {"error": "404 Not Found"}


# -- tag details: lib/api/entities/container_registry.rb, app/models/container_registry/tag.rb


def _config_digest(pusher: ImagePusher, tag: str) -> str:
    _, _, body = pusher.registry.request(
        "GET", f"/v2/{REPO}/manifests/{tag}", {"Accept": MANIFEST_ACCEPT}
    )
    digest: str = json.loads(body)["config"]["digest"]
    return digest


@pytest.mark.parametrize("metadata_database", [True, False])
def test_tag_details_as_gitlab_serves_them(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, tmp_path: Path, metadata_database: bool
):
    gitlab_emulator.metadata_database = metadata_database
    _project(gitlab_emulator)
    built = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    digest = push_created(pusher, tmp_path, REPO, "v1", built)
    pushed = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    set_pushed_at(pusher.registry, REPO, "v1", pushed)
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.reporter)
    _, _, body = pusher.registry.request(
        "GET", f"/v2/{REPO}/manifests/v1", {"Accept": MANIFEST_ACCEPT}
    )
    manifest = json.loads(body)
    layers = sum(layer["size"] for layer in manifest["layers"])

    tag = _repository(gitlab_emulator, token).tags.get("v1")

    revision = _config_digest(pusher, "v1").removeprefix("sha256:")
    assert tag.revision == revision != digest.removeprefix("sha256:")
    assert tag.short_revision == revision[:9]
    assert tag.digest == digest
    if metadata_database:
        assert tag.created_at == "2026-02-03T04:05:06.000Z"  # the registry's push time
        assert tag.total_size == layers + manifest["config"]["size"]
    else:
        assert tag.created_at == "2025-01-02T03:04:05Z"  # the image config's "created"
        assert tag.total_size == layers  # layers.sum(&:size): the config is not counted


def test_tag_details_of_an_index_fail_without_the_metadata_database(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    _project(gitlab_emulator)
    pusher.push(REPO, "multi", multi_platform=True)
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.reporter)
    repository = _repository(gitlab_emulator, token)
    gitlab_emulator.metadata_database = True
    assert repository.tags.get("multi").revision  # via the registry's record of the index

    gitlab_emulator.metadata_database = False
    with pytest.raises(gitlab.GitlabGetError) as raised:
        repository.tags.get("multi")  # Tag#layers: nil.map on an index
    assert raised.value.response_code == 500


# -- job tokens: lib/api/helpers.rb find_project!, lib/gitlab/auth/auth_finders.rb ----------


def test_a_job_token_of_another_project_gets_gitlabs_403(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher
):
    project = _project(gitlab_emulator)
    pusher.push(REPO, "x")
    other = gitlab_emulator.add_project("group/other", branches=["main"])
    token = gitlab_emulator.job_token(other, Role.maintainer)
    project.members[gitlab_emulator.tokens[token].user] = Role.maintainer
    client = _gitlab(gitlab_emulator, token, job=True)
    expected = {
        "message": "403 Forbidden - This project's CI/CD job token cannot be used to "
        "authenticate with the container registry of a different project."
    }

    for project_id in (project.id, 999):  # checked before the project is even looked up
        with pytest.raises(gitlab.GitlabListError) as raised:
            client.projects.get(project_id, lazy=True).repositories.list()
        assert raised.value.response_code == 403
        assert _body(raised.value) == expected


def test_a_job_token_reading_the_project_is_anonymous(gitlab_emulator: GitLabEmulator):
    project = _project(gitlab_emulator)
    token = gitlab_emulator.job_token(project, Role.maintainer)

    with pytest.raises(gitlab.GitlabGetError) as raised:
        _gitlab(gitlab_emulator, token, job=True).projects.get(project.id)

    # lib/api/projects.rb get ':id' has no job_token_allowed: the token is ignored.
    assert raised.value.response_code == 404
    assert _body(raised.value) == {"message": "404 Project Not Found"}


# -- a tag that vanished meanwhile; repository deletion ---------------------------------------


@pytest.mark.parametrize(("metadata_database", "status"), [(True, 403), (False, 200)])
def test_deleting_a_tag_that_vanished(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, metadata_database: bool, status: int
):
    gitlab_emulator.metadata_database = metadata_database
    _project(gitlab_emulator)
    pusher.push(REPO, "keep")
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.developer)
    repository: ProjectRegistryRepository = _repository(gitlab_emulator, token)
    client = _gitlab(gitlab_emulator, token)
    path = f"/projects/1/registry/repositories/{repository.id}/tags/gone"

    if status == 200:
        # Client#delete_if_exists: the registry's 404 counts as deleted.
        assert client.http_delete(path).status_code == 200
    else:
        # ContainerRepository#tag finds nothing; authorize! on nil is 403 Forbidden.
        with pytest.raises(gitlab.GitlabHttpError) as raised:
            client.http_delete(path)
        assert raised.value.response_code == 403
        assert _body(raised.value) == {"message": "403 Forbidden"}
    assert pusher.registry.tags(REPO) == ["keep"]


def test_repository_deletion_is_scheduled(gitlab_emulator: GitLabEmulator, pusher: ImagePusher):
    _project(gitlab_emulator)
    pusher.push(REPO, "x")
    token = gitlab_emulator.personal_token(gitlab_emulator.projects[1], Role.maintainer)
    client = _gitlab(gitlab_emulator, token)
    repository = _repository(gitlab_emulator, token)

    answer = client.http_delete(f"/projects/1/registry/repositories/{repository.id}")

    assert answer.status_code == 202
    [listed] = client.projects.get(1, lazy=True).repositories.list(all=True)
    assert listed.status == "delete_scheduled"
    assert pusher.registry.tags(REPO) == ["x"]  # until the worker runs
    assert gitlab_emulator.run_scheduled_deletions() == 1
    assert client.projects.get(1, lazy=True).repositories.list(all=True) == []
    assert pusher.registry.tags(REPO) == []
