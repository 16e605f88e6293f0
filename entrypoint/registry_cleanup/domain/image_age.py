"""How old an image is, from the registry, when GitLab cannot say.

Without the registry metadata database GitLab dates a tag by its image config's ``created``
(lib/container_registry/tag.rb ``created_at``: ``next unless config``), and asks the registry
only for single-platform manifests (base_client.rb ``ACCEPTED_TYPES``). An image index, which
``docker buildx build --push`` writes by default (the image plus a provenance attestation), has
no config, so GitLab gives no creation time and, for an OCI index, no digest either.

The registry knows both: the index's digest, and the ``created`` of each platform image's
config. An image is as old as its newest platform image. Attestation manifests are not
platform images: buildx marks them with the platform ``unknown/unknown`` and the annotation
``vnd.docker.reference.type: attestation-manifest``.

The parsing here is pure; ``registry_cleanup.registry.regctl`` fetches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from registry_cleanup.domain.refs import ImageRef

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
_REFERENCE_TYPE = "vnd.docker.reference.type"
_ATTESTATION = "attestation-manifest"


@dataclass(frozen=True)
class RegistryImage:
    """What the registry says of a tag: its digest, and when its newest platform image was
    created (None when no config says)."""

    digest: str
    created_at: datetime | None


class ImageReader(Protocol):
    """The registry, read for what GitLab cannot say of a tag (regctl.RegctlSession is one)."""

    def image(self, ref: ImageRef) -> RegistryImage | None:
        """The tag's digest and age; None when the registry does not have the tag."""
        ...

    def digest(self, ref: ImageRef) -> str | None:
        """The tag's digest alone (one request, no config read); None when it is absent."""
        ...


def manifest_digest(body: bytes) -> str:
    """A manifest's digest: the sha256 of its exact bytes (OCI image spec, descriptor.md)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def platform_images(manifest: dict[str, object]) -> list[str] | None:
    """The digests of an index's platform images, attestations left out; None when the
    manifest is a single image (it has a config of its own)."""
    if manifest.get("mediaType") not in INDEX_TYPES and "manifests" not in manifest:
        return None
    entries = manifest.get("manifests")
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        platform = entry.get("platform") or {}
        annotations = entry.get("annotations") or {}
        unknown = (
            isinstance(platform, dict)
            and platform.get("os") == "unknown"
            and platform.get("architecture") == "unknown"
        )
        attestation = isinstance(annotations, dict) and annotations.get(_REFERENCE_TYPE) == (
            _ATTESTATION
        )
        if not (unknown or attestation):
            found.append(entry["digest"])
    return found


def parse_created(text: str | None) -> datetime | None:
    """An image config's ``created`` (RFC 3339), or None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def image_age(body: bytes, created_of: Callable[[str], datetime | None]) -> RegistryImage:
    """The tag's digest and its newest platform image's creation time.

    ``created_of(digest)`` reads the config of the image with that digest: the tag's own
    manifest when it is a single image, else one call per platform image, none for
    attestations. Digests, not the tag, so that every read is of the same image."""
    digest = manifest_digest(body)
    manifest = json.loads(body)
    platforms = platform_images(manifest) if isinstance(manifest, dict) else None
    if platforms is None:
        return RegistryImage(digest, created_of(digest))
    times = [time for time in map(created_of, platforms) if time is not None]
    return RegistryImage(digest, max(times) if times else None)
