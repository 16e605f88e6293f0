"""Thousands of tags in seconds, for benchmarks: a few real images, then tag links on disk.

Pushing 5,000 tags with one regctl process each takes minutes. Instead a handful of real images
are pushed with regctl (so manifests, configs and layers are all there, and the registry knows
each manifest as a revision of the repository), and every further tag is written straight into
the registry's filesystem storage the way distribution itself records a tag push:

    _manifests/tags/<tag>/current/link               -> the manifest digest
    _manifests/tags/<tag>/index/sha256/<hex>/link    -> the same digest

The registry serves those tags like any other (tag list, HEAD/GET by tag, delete). Set-up only:
every benchmark and test then talks to the registry over HTTP.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def seed_tags(
    pusher: ImagePusher, repository: str, tags: Sequence[str], *, images: int = 1
) -> dict[str, str]:
    """Make every tag in ``tags`` exist in ``repository``; returns tag -> digest.

    Tags are spread round-robin over ``images`` distinct images, image k created k hours after
    2026-01-01, so retention by age has different creation times to sort.
    """
    if not tags:
        return {}
    count = max(1, min(images, len(tags)))
    digests = []
    for k in range(count):
        created = (EPOCH + timedelta(hours=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Pushed under its first tag: a real push, so the registry records the revision.
        digests.append(pusher.push(repository, tags[k], seed=f"{repository}#{k}", created=created))
    result = {tags[k]: digests[k] for k in range(count)}
    for index, tag in enumerate(tags[count:], start=count):
        result[tag] = digests[index % count]
        link_tag(pusher.registry, repository, tag, result[tag])
    return result


def link_tag(registry: LocalRegistry, repository: str, tag: str, digest: str) -> None:
    """Point ``tag`` at ``digest`` on disk, as distribution records a tag push; the manifest
    must already be a revision of ``repository``. Each link is replaced whole, so a registry
    reading it meanwhile sees the old digest or the new one."""
    directory = registry.tags_directory(repository) / tag
    revision = directory / "index" / "sha256" / digest.removeprefix("sha256:") / "link"
    for link in (revision, directory / "current" / "link"):
        link.parent.mkdir(parents=True, exist_ok=True)
        written = link.with_name("link.new")
        written.write_text(digest)
        os.replace(written, link)


def copy_repository(registry: LocalRegistry, source: str, repository: str) -> None:
    """Make ``repository`` hold exactly the tags and images of ``source``, on disk.

    distribution keeps blobs once for the whole registry and, per repository, only links:
    ``_layers`` (the blobs it may serve), ``_manifests/revisions`` and ``_manifests/tags``.
    Copying that directory of links is what a cross-repository mount plus a tag push of every
    tag would leave behind; a thousand repositories take seconds instead of a regctl push each.
    """

    def root(name: str) -> Path:
        return registry.tags_directory(name).parent.parent

    shutil.copytree(root(source), root(repository), dirs_exist_ok=True)


def copy_storage(source: Path, registry: LocalRegistry) -> None:
    """Add a stopped registry's storage (``source``, its data directory: blobs and
    repositories) to ``registry``'s, as if every image in it had been pushed there just now
    (the files get new times: the metadata database's push time is a link's)."""
    shutil.copytree(source, registry.root / "data", dirs_exist_ok=True, copy_function=shutil.copy)
