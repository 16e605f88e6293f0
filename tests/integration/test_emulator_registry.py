"""The emulator's REST tag delete on each registry flavour (tests/fakes/registry_store.py).

On distribution v3 it is GitLab's one-step tag delete: one DELETE by tag sent to the registry,
only that tag goes, and a registry that fails it makes GitLab answer 400. On 2.8, which has no
tag delete, the emulator edits the registry's storage to the same effect.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.fakes.registry_store import RegistryStore

pytestmark = pytest.mark.both_registries

REPO = "group/app"


def add_project(emulator: GitLabEmulator) -> Project:
    project = emulator.add_project(REPO, branches=["main"])
    emulator.add_repository(project)
    return project


def delete_tag(emulator: GitLabEmulator, project: Project, tag: str) -> tuple[int, bytes]:
    """DELETE /projects/:id/registry/repositories/:rid/tags/:tag as a Developer."""
    repository_id = project.repositories[0].id
    url = f"{emulator.url}/projects/{project.id}/registry/repositories/{repository_id}/tags/{tag}"
    request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
        url,
        method="DELETE",
        headers={"PRIVATE-TOKEN": emulator.personal_token(project, Role.developer)},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_rest_tag_delete_removes_only_that_tag(
    gitlab_emulator: GitLabEmulator, registry: LocalRegistry, pusher: ImagePusher
) -> None:
    project = add_project(gitlab_emulator)
    digest = pusher.push(REPO, "feature-a")
    pusher.tag(REPO, "feature-a", "feature-b")

    status, body = delete_tag(gitlab_emulator, project, "feature-a")

    assert (status, body) == (200, b"")
    assert registry.tags(REPO) == ["feature-b"]
    assert registry.digest(REPO, "feature-b") == digest


def test_a_tag_already_gone_counts_as_deleted(
    gitlab_emulator: GitLabEmulator, registry: LocalRegistry, pusher: ImagePusher
) -> None:
    # ContainerRegistry::Client#delete_if_exists: a 404 from the registry is a success.
    project = add_project(gitlab_emulator)
    pusher.push(REPO, "main")

    assert delete_tag(gitlab_emulator, project, "never-pushed") == (200, b"")
    assert registry.tags(REPO) == ["main"]


def test_on_v3_the_delete_goes_through_the_registry_and_its_refusal_is_a_400(
    registry_no_deletes: LocalRegistry, regctl_binary: str
) -> None:
    """A registry that refuses deletes tells the two paths apart: v3's DELETE by tag is refused
    (405) and GitLab answers 400 Bad Request with the tag kept; 2.8's storage edit goes past
    the registry's own setting."""
    registry = registry_no_deletes
    with (
        GitLabEmulator(RegistryStore(registry)) as emulator,
        ImagePusher(registry, regctl_binary) as pusher,
    ):
        project = add_project(emulator)
        digest = pusher.push(REPO, "feature-a")

        status, body = delete_tag(emulator, project, "feature-a")

    if registry.deletes_by_tag:
        assert (status, body) == (400, b'{"message": "400 Bad Request"}')
        assert registry.digest(REPO, "feature-a") == digest
    else:
        assert status == 200
        assert registry.tags(REPO) == []


@pytest.mark.both_registries
def test_every_tag_past_the_registrys_first_page(
    registry: LocalRegistry, pusher: ImagePusher
) -> None:
    """distribution v3 answers a tag list with at most 1,000 names and a Link to the rest; the
    harness (and so the emulator's GitLab) follows it, as the end-state checks need every tag."""
    from devkit.seeding import seed_tags

    names = [f"t-{n:04d}" for n in range(1005)]
    seed_tags(pusher, "group/many", names, images=2)

    assert registry.tags("group/many") == names
    assert RegistryStore(registry).tags("group/many") == names
