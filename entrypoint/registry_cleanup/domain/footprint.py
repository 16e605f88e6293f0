"""What a cleanup frees: the bytes only the deleted tags' images hold.

Pure; the manifests come in as the registry served them (engine/sizes.py reads them). A tag
points at a manifest. An image manifest references its config and layers by descriptor, whose
``size`` is what the registry stores: the compressed bytes. An index references manifests (the
platform images, and the attestation manifests ``docker buildx`` adds, which go with it).
What an image occupies is the union of all that, each digest once: the manifests' own bytes,
the configs and the layers.

A repository's tags share blobs (a base layer, a re-tagged image). Deleting tags frees, once
the registry's garbage collection runs, what the deleted tags' images reference and no kept
tag's image does. A blob another repository uses stays too (GitLab's registry stores it once),
which this cannot see: the figure is an upper bound. A signature or attestation tag
(``sha256-<digest>.sig``) is an image of its own that the plan deletes only with its subject,
so its bytes count exactly when its subject's do.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from registry_cleanup.domain.image_age import manifest_digest, platform_images


@dataclass(frozen=True)
class Manifest:
    """One manifest as the figures need it: its own bytes, and what it references."""

    digest: str
    size: int
    # An index's manifests, by digest (their sizes come with their own reading).
    manifests: tuple[str, ...] = ()
    # An image's config and layers: digest -> compressed size.
    blobs: tuple[tuple[str, int], ...] = ()
    # An image's config (its creation time), and an index's platform images (attestations
    # left out): how old the image is (domain/image_age.py).
    config: str | None = None
    platforms: tuple[str, ...] = ()


def parse_manifest(body: bytes) -> Manifest:
    """The manifest ``body`` is. Anything that is not a JSON object references nothing."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    digest = manifest_digest(body)
    if not isinstance(document, dict):
        return Manifest(digest, len(body))
    children = tuple(digest for digest, _ in _descriptors(document.get("manifests")))
    config = _descriptors([document.get("config")])
    blobs = config + _descriptors(document.get("layers"))
    return Manifest(
        digest,
        len(body),
        children,
        tuple(blobs),
        config=config[0][0] if config else None,
        platforms=tuple(platform_images(document) or ()),
    )


def _descriptors(value: object) -> list[tuple[str, int]]:
    """The well-formed descriptors of a list: (digest, size), a size a non-negative integer."""
    found = []
    for entry in value if isinstance(value, list) else []:
        if not isinstance(entry, dict):
            continue
        digest, size = entry.get("digest"), entry.get("size")
        if isinstance(digest, str) and type(size) is int and size >= 0:
            found.append((digest, size))
    return found


def occupied(digest: str, manifests: Mapping[str, Manifest]) -> dict[str, int] | None:
    """Everything the image ``digest`` names occupies, digest -> bytes, each once; None when a
    manifest in it was not read (``manifests`` lacks it)."""
    found: dict[str, int] = {}
    waiting = [digest]
    while waiting:
        current = waiting.pop()
        if current in found:
            continue
        manifest = manifests.get(current)
        if manifest is None:
            return None
        found[current] = manifest.size
        found.update(manifest.blobs)
        waiting += manifest.manifests
    return found


@dataclass(frozen=True)
class Footprint:
    """A repository's figures for one plan.

    ``reclaimable_bytes`` counts what the deleted tags free (at least that, when some of
    their sizes are unknown); ``kept_bytes`` is the repository's size after the cleanup;
    ``size_unknown`` counts the tags whose images could not be read; ``tag_bytes`` is each
    tag's image's compressed size (None when unknown)."""

    reclaimable_bytes: int
    kept_bytes: int
    size_unknown: int
    tag_bytes: dict[str, int | None]


def footprint(
    tags: Mapping[str, str | None],
    deleted: Collection[str],
    manifests: Mapping[str, Manifest],
    *,
    reported_size: int | None = None,
    reported_after: bool = False,
) -> Footprint:
    """The figures of one repository: ``tags`` maps each tag to its digest (None: unread),
    ``deleted`` names the tags the plan deletes, ``manifests`` are those read.

    ``reported_size`` is the repository's size as GitLab reports it (its registry metadata
    database; None elsewhere): the size after the cleanup is then that, less what the plan
    frees unless ``reported_after`` (read after the deletions: GitLab counts only what tagged
    manifests reference). Otherwise it is the distinct bytes of the kept tags' images."""
    images = {tag: occupied(digest, manifests) if digest else None for tag, digest in tags.items()}
    freed: dict[str, int] = {}
    kept: dict[str, int] = {}
    for tag, image in images.items():
        if image is not None:
            (freed if tag in deleted else kept).update(image)
    reclaimable = sum(size for digest, size in freed.items() if digest not in kept)
    if reported_size is not None:
        kept_bytes = reported_size if reported_after else max(reported_size - reclaimable, 0)
    else:
        kept_bytes = sum(kept.values())
    return Footprint(
        reclaimable_bytes=reclaimable,
        kept_bytes=kept_bytes,
        size_unknown=sum(1 for image in images.values() if image is None),
        tag_bytes={
            tag: sum(image.values()) if image is not None else None for tag, image in images.items()
        },
    )
