"""The emulator's view of the real distribution registry: tags, tag details, tag deletion.

Reads go over the registry's HTTP API. Deleting one tag follows GitLab's registry, which
supports the OCI tag delete (only that tag goes; other tags on the same digest stay). The
distribution 2.8 registry we run answers ``DELETE /v2/<name>/manifests/<tag>`` with 400, so the
emulator removes the tag's link from the registry's filesystem storage instead: afterwards the
real registry no longer lists or resolves the tag, exactly as after GitLab's tag delete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from devkit.local_registry import MANIFEST_ACCEPT, LocalRegistry

_INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


@dataclass(frozen=True)
class TagDetails:
    """What GitLab's "Get details of a registry repository tag" returns about one tag."""

    name: str
    digest: str
    created_at: str | None
    total_size: int


class RegistryStore:
    """Registry data for the emulator, kept in a running LocalRegistry."""

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry
        self._created: dict[tuple[str, str], str | None] = {}

    def tags(self, repository: str) -> list[str]:
        return self.registry.tags(repository)

    def details(self, repository: str, tag: str) -> TagDetails | None:
        return self._details_at(repository, tag, name=tag)

    def _details_at(self, repository: str, reference: str, *, name: str) -> TagDetails | None:
        status, headers, body = self.registry.request(
            "GET", f"/v2/{repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT}
        )
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET manifest {repository}:{reference}: HTTP {status}")
        digest = _header(headers, "Docker-Content-Digest")
        manifest = json.loads(body)
        if manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest:
            # GitLab reports an index's creation time from its first image.
            first = manifest["manifests"][0]["digest"]
            _, _, body = self.registry.request(
                "GET", f"/v2/{repository}/manifests/{first}", {"Accept": MANIFEST_ACCEPT}
            )
            manifest = json.loads(body)
        config_digest = manifest["config"]["digest"]
        _, _, config_body = self.registry.request("GET", f"/v2/{repository}/blobs/{config_digest}")
        created = json.loads(config_body).get("created")
        size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
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

    def created_at(self, repository: str, digest: str) -> str | None:
        """The image's creation time from its config; content is immutable, so cached."""
        key = (repository, digest)
        if key not in self._created:
            details = self._details_at(repository, digest, name=digest)
            self._created[key] = details.created_at if details is not None else None
        return self._created[key]

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove exactly this tag; True when it existed."""
        link = self._tags_directory(repository) / tag
        if not link.is_dir():
            return False
        shutil.rmtree(link)
        return True

    def _tags_directory(self, repository: str) -> Path:
        return self.registry.tags_directory(repository)


def _header(headers: dict[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise RuntimeError(f"registry response without {name}")
