"""The emulator's view of the real distribution registry: tags, tag details, tag deletion.

Reads go over the registry's HTTP API. Deleting one tag follows GitLab against its own
registry: Projects::ContainerRepository::DeleteTagsService picks
Projects::ContainerRepository::Gitlab::DeleteTagsService when ``client.supports_tag_delete?``
(lib/container_registry/client.rb: the GitLab registry fork; on GitLab.com the ``tag_delete``
feature), which calls ``ContainerRegistry::Client#delete_repository_tag_by_name``: one
``DELETE /v2/<name>/tags/reference/<tag>`` per tag, where a 404 counts as deleted
(``delete_if_exists``). Only that tag goes; other tags on the same digest stay.

- On distribution v3 (``LocalRegistry.deletes_by_tag``) the emulator sends that one request as
  the OCI distribution spec spells it, ``DELETE /v2/<name>/manifests/<tag>`` (202): distribution
  has no ``/tags/reference/`` route, and this is its one-step tag delete with the same effect.
- Distribution 2.8 answers DELETE by tag with 400. GitLab would take its third-party path there
  (app/services/projects/container_repository/third_party/delete_tags_service.rb: push a dummy
  manifest to the tag, delete it by digest); the emulator instead removes the tag's link from
  the registry's filesystem storage, so that the tests see GitLab's own registry's result:
  afterwards the real registry no longer lists or resolves the tag, other tags untouched.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from devkit.local_registry import LocalRegistry

_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


class TagDeleteFailed(RuntimeError):
    """The registry did not delete the tag (unreachable, or neither 202 nor 404).

    GitLab's DeleteTagsService then returns an error (a ``Faraday::Error`` is rescued, a false
    ``delete_tag_by_name`` deletes nothing), and lib/api/project_container_repositories.rb
    answers ``bad_request!``: 400.
    """


# lib/container_registry/base_client.rb ACCEPTED_TYPES: what GitLab asks the registry for when
# it reads a tag without the metadata database (ContainerRegistry::Client#repository_manifest
# and #repository_tag_digest). No index type: GitLab reads single-platform manifests.
GITLAB_ACCEPTED_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


@dataclass(frozen=True)
class TagDetails:
    """What GitLab, without the metadata database, reads of one tag from the registry
    (lib/container_registry/tag.rb): the digest the registry names for GitLab's Accept header,
    and, from the manifest it serves, the config's ``created`` and the layers' total size.
    ``index`` is an image index served anyway (a registry that ignores the Accept header):
    no config, so no ``created``, and no layers, so Tag#layers fails on ``nil.map``."""

    name: str
    digest: str
    created_at: str | None
    total_size: int
    index: bool = False


class RegistryStore:
    """Registry data for the emulator, kept in a running LocalRegistry."""

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry
        self._created: dict[tuple[str, str], TagDetails | None] = {}
        # Whether the registry answers GitLab's request for an OCI image index with 404, as
        # distribution 2.x does ("OCI index found, but accept header does not support OCI
        # indexes"), even where the real registry under the emulator (distribution v3) serves
        # the index whatever the Accept header. gitlabhq does not say which GitLab's own
        # registry does: both readings are tested.
        self.refuses_oci_index = False

    def tags(self, repository: str) -> list[str]:
        return self.registry.tags(repository)

    def details(self, repository: str, tag: str) -> TagDetails | None:
        """GitLab's read of ``tag``; None where the registry answers it 404.

        Content is immutable, so what GitLab reads is cached by the digest the tag's link
        names (the registry's own storage): one manifest request per image, not per tag."""
        linked = self.digests(repository, [tag]).get(tag)
        key = (repository, linked or "")
        if linked is None or key not in self._created:
            status, headers, body = self.registry.request(
                "GET", f"/v2/{repository}/manifests/{tag}", {"Accept": GITLAB_ACCEPTED_TYPES}
            )
            if status == 404:
                return None
            if status != 200:
                raise RuntimeError(f"GET manifest {repository}:{tag}: HTTP {status}")
            digest = _header(headers, "Docker-Content-Digest")
            self._created[key] = self._read(repository, digest, json.loads(body), name=tag)
        found = self._created[key]
        if found is None:
            return None
        return TagDetails(tag, found.digest, found.created_at, found.total_size, found.index)

    def _read(
        self, repository: str, digest: str, manifest: dict[str, object], *, name: str
    ) -> TagDetails | None:
        if manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest:
            if self.refuses_oci_index and manifest.get("mediaType") == _OCI_INDEX:
                return None
            return TagDetails(name=name, digest=digest, created_at=None, total_size=0, index=True)
        config = manifest["config"]
        assert isinstance(config, dict)
        _, _, config_body = self.registry.request(
            "GET", f"/v2/{repository}/blobs/{config['digest']}"
        )
        created = json.loads(config_body).get("created")
        layers = manifest.get("layers")
        size = config["size"] + sum(layer["size"] for layer in layers or [])  # type: ignore[union-attr]
        return TagDetails(name=name, digest=digest, created_at=created, total_size=size)

    def digests(self, repository: str, tags: list[str]) -> dict[str, str]:
        """The digest each tag points at, read from the registry's own tag links.

        GitLab answers its GraphQL tag pages from the registry's metadata; reading the storage
        the registry itself serves from is the equivalent, without one request per tag.
        """
        found = {}
        for tag in tags:
            link = self._tags_directory(repository) / tag / "current" / "link"
            try:
                found[tag] = link.read_text().strip()
            except FileNotFoundError:
                continue
        return found

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove exactly this tag; True when it existed."""
        if self.registry.deletes_by_tag:
            return self._delete_by_tag(repository, tag)
        link = self._tags_directory(repository) / tag
        if not link.is_dir():
            return False
        shutil.rmtree(link)
        return True

    def _delete_by_tag(self, repository: str, tag: str) -> bool:
        """GitLab's one-step tag delete: one DELETE by tag; 404 means it was already gone."""
        try:
            status, _, body = self.registry.request("DELETE", f"/v2/{repository}/manifests/{tag}")
        except OSError as error:  # the registry is down or restarting
            raise TagDeleteFailed(f"DELETE {repository}:{tag}: {error}") from error
        if status == 202:
            return True
        if status == 404:
            return False
        raise TagDeleteFailed(f"DELETE {repository}:{tag}: HTTP {status} {body[:200]!r}")

    def _tags_directory(self, repository: str) -> Path:
        return self.registry.tags_directory(repository)


def _header(headers: dict[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise RuntimeError(f"registry response without {name}")
