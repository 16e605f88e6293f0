"""What a sweep frees (``sweep --sizes``): every tag's image read from the registry, then the
figures of domain/footprint.py per repository.

The sweep starts the reads as soon as its listing is known (``ManifestCache.prefetch``), so
they go on beside the ref lists, the plan and the deletions (a deleted tag's manifest stays
readable by its digest until the registry's garbage collection); the figures are made at the
end from the run's entries (``measure``). A tag is read by the digest the listing gave, else by
name; each manifest once for the whole run, by digest (an index, then the manifests it lists),
concurrently. Reading changes nothing and decides nothing: a manifest that cannot be read
makes its tag's size unknown, and the run goes on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from registry_cleanup.domain.footprint import Footprint, Manifest, footprint, parse_manifest
from registry_cleanup.domain.image_age import parse_created
from registry_cleanup.engine.outcome import Status, SweepEntry
from registry_cleanup.errors import CleanupError
from registry_cleanup.pool import MAX_CONCURRENCY, run_bounded

if TYPE_CHECKING:
    from registry_cleanup.engine.inventory import Inventory
    from registry_cleanup.engine.sweep import SweepResult
    from registry_cleanup.gitlab import GitLabApi, Repository

# What a sweep frees: the tags it deleted, or in a dry run would delete.
FREEING = frozenset({Status.deleted, Status.would_delete})
# What stays: everything else but a tag that was gone already.
GONE = frozenset({Status.absent})


class ManifestSource(Protocol):
    """The registry, read for manifests (registry/manifests.ManifestReader is one)."""

    host: str

    def manifest(self, repository: str, reference: str) -> bytes | None:
        """The manifest as served, or None when the registry does not have it."""
        ...

    def blob(self, repository: str, digest: str) -> bytes | None:
        """A blob (an image config), or None when the registry does not have it."""
        ...


@dataclass(frozen=True)
class RepositorySizes:
    location: str
    figures: Footprint
    # When the images of tags the listing did not date were created, as read here (ISO).
    created: dict[str, str] = field(default_factory=dict)


@dataclass
class Sizes:
    """The figures of one sweep: per repository, and each tag's image's size."""

    repositories: list[RepositorySizes] = field(default_factory=list)

    @property
    def reclaimable_bytes(self) -> int:
        return sum(r.figures.reclaimable_bytes for r in self.repositories)

    @property
    def kept_bytes(self) -> int:
        return sum(r.figures.kept_bytes for r in self.repositories)

    @property
    def size_unknown(self) -> int:
        return sum(r.figures.size_unknown for r in self.repositories)

    def tag_bytes(self, location: str, tag: str) -> int | None:
        found = self._of(location)
        return found.figures.tag_bytes.get(tag) if found is not None else None

    def created_at(self, location: str, tag: str) -> str | None:
        """When a tag's image was created, where the listing did not say and the registry did."""
        found = self._of(location)
        return found.created.get(tag) if found is not None else None

    def _of(self, location: str) -> RepositorySizes | None:
        return next((r for r in self.repositories if r.location == location), None)


class ManifestCache:
    """Manifests read so far, by digest: a digest names the same bytes in every repository."""

    def __init__(self, source: ManifestSource, concurrency: int) -> None:
        self.source = source
        # Reads are small GETs to the registry, not GitLab's API: twice the API's concurrency.
        self._concurrency = min(2 * concurrency, MAX_CONCURRENCY)
        self.manifests: dict[str, Manifest] = {}
        # What a tag name read gave, by (repository path, tag): read once.
        self._named: dict[tuple[str, str], str | None] = {}
        self._unreadable: set[str] = set()
        # Image configs' creation times, by config digest.
        self._created: dict[str, datetime | None] = {}

    def resolve(self, path: str, references: Iterable[str]) -> dict[str, str | None]:
        """Each reference (a digest, or a tag name) -> the digest of the manifest it names,
        read with everything it lists; None when it could not be read."""
        references = list(references)
        wanted = [
            ref
            for ref in references
            if ref not in self.manifests and (path, ref) not in self._named
        ]
        found = self._read(path, wanted)
        self._named |= {(path, ref): digest for ref, digest in found.items()}
        # An index lists manifests: read those not read yet, until nothing is missing.
        while missing := sorted(
            {child for manifest in self.manifests.values() for child in manifest.manifests}
            - self.manifests.keys()
            - self._unreadable
        ):
            self._read(path, missing)
        return {
            ref: ref if ref in self.manifests else self._named.get((path, ref))
            for ref in references
        }

    def prefetch(self, work: list[tuple[str, list[str]]]) -> Reading:
        """Start reading ``work`` (repository path, references) in the background, while the
        sweep goes on."""
        reading = Reading(self)

        def read_all() -> None:
            try:
                for path, references in work:
                    self.resolve(path, references)
            except BaseException as error:  # handed to whoever waits
                reading.failed.append(error)

        reading.thread = threading.Thread(target=read_all, name="sizes-prefetch", daemon=True)
        reading.thread.start()
        return reading

    def created(self, path: str, digests: Iterable[str]) -> dict[str, datetime | None]:
        """When each image (by digest, already resolved) was created: its newest platform
        image's config says (domain/image_age.py). Each config read once, concurrently."""
        images = {digest: self.manifests.get(digest) for digest in digests}
        configs = dict.fromkeys(
            config for manifest in images.values() for config in self._configs_of(manifest)
        )
        wanted = [config for config in configs if config not in self._created]

        def read(config: str) -> tuple[str, datetime | None]:
            try:
                body = self.source.blob(path, config)
            except CleanupError:
                return config, None
            return config, _config_created(body)

        self._created.update(run_bounded(wanted, read, self._concurrency))
        return {digest: self._image_created(manifest) for digest, manifest in images.items()}

    def _platform_images(self, manifest: Manifest) -> list[Manifest | None]:
        """An index's platform images (as read), or the image itself."""
        if not manifest.platforms:
            return [manifest]
        return [self.manifests.get(platform) for platform in manifest.platforms]

    def _configs_of(self, manifest: Manifest | None) -> list[str]:
        if manifest is None:
            return []
        images = self._platform_images(manifest)
        return [image.config for image in images if image is not None and image.config]

    def _image_created(self, manifest: Manifest | None) -> datetime | None:
        if manifest is None:
            return None
        if not manifest.platforms:
            return self._created.get(manifest.config) if manifest.config else None
        times = [self._image_created(image) for image in self._platform_images(manifest)]
        known = [time for time in times if time is not None]
        return max(known) if known else None

    def _read(self, path: str, references: list[str]) -> dict[str, str | None]:
        """Read each reference once, concurrently: reference -> digest, or None."""

        def read(reference: str) -> tuple[str, bytes | None]:
            try:
                return reference, self.source.manifest(path, reference)
            except CleanupError:  # refused, unreachable: this tag's size is unknown
                return reference, None

        wanted = list(dict.fromkeys(references))
        digests: dict[str, str | None] = {}
        for reference, body in run_bounded(wanted, read, self._concurrency):
            if body is None:
                self._unreadable.add(reference)
                digests[reference] = None
                continue
            manifest = parse_manifest(body)
            self.manifests[manifest.digest] = manifest
            digests[reference] = manifest.digest
        return digests


@dataclass
class Reading:
    """Reads going on in the background; ``done`` waits for them."""

    cache: ManifestCache
    thread: threading.Thread | None = None
    failed: list[BaseException] = field(default_factory=list)

    def done(self) -> ManifestCache:
        """The cache once the reads are over (raising what the reading raised)."""
        if self.thread is not None:
            self.thread.join()
        if self.failed:
            raise self.failed[0]
        return self.cache


def start_reading(
    source: ManifestSource, repositories: list[Repository], inventory: Inventory, concurrency: int
) -> Reading:
    """Start reading every listed tag's image: by the digest the listing gave, else by name."""
    work = []
    for repository in repositories:
        if not readable(repository, source):
            continue
        known = inventory.known[repository.id]
        references = [
            (detail.digest if (detail := known.get(name)) else "") or name
            for name in inventory.tags[repository.id]
        ]
        work.append((repository.path, references))
    return ManifestCache(source, concurrency).prefetch(work)


def measure(
    entries: list[SweepEntry],
    repositories: list[Repository],
    cache: ManifestCache,
    *,
    reported: Callable[[Repository], int | None] | None = None,
    deleted_already: bool = False,
) -> Sizes:
    """The figures of a sweep's ``entries``: each repository's tags read through ``cache``
    (what a prefetch read is not read again).

    ``reported`` is GitLab's size of a repository, where it has one (the metadata database);
    after a run that deleted, it is already the size after the cleanup (GitLab counts the
    layers of tagged manifests), else the figure subtracts what the plan frees."""
    sizes = Sizes()
    for repository in repositories:
        mine = [e for e in entries if e.repository == repository.location and e.status not in GONE]
        if not mine:
            continue
        references = {e.tag: e.digest or e.tag for e in mine}
        if not readable(repository, cache.source):
            digests: dict[str, str | None] = dict.fromkeys(references.values())
        else:
            digests = cache.resolve(repository.path, references.values())
        resolved = {tag: digests.get(reference) for tag, reference in references.items()}
        # The listing's creation times are GitLab's; the others are read here, for the page.
        undated = {e.tag: resolved[e.tag] for e in mine if e.created_at is None}
        times = cache.created(repository.path, {d for d in undated.values() if d is not None})
        created = {
            tag: moment.isoformat()
            for tag, digest in undated.items()
            if digest is not None and (moment := times.get(digest)) is not None
        }
        size = reported(repository) if reported is not None else None
        figures = footprint(
            resolved,
            {e.tag for e in mine if e.status in FREEING},
            cache.manifests,
            reported_size=size,
            reported_after=deleted_already,
        )
        sizes.repositories.append(RepositorySizes(repository.location, figures, created))
    return sizes


def readable(repository: Repository, source: ManifestSource) -> bool:
    """Whether ``source`` can read the repository: the same registry host (its location's)."""
    return repository.location.split("/", 1)[0] == source.host


def _config_created(body: bytes | None) -> datetime | None:
    try:
        config = json.loads(body or b"null")
    except ValueError:
        return None
    return parse_created(config.get("created")) if isinstance(config, dict) else None


def measure_sweep(result: SweepResult, api: GitLabApi, cache: ManifestCache) -> Sizes:
    """The figures of a finished sweep (or apply), with GitLab's repository sizes where it
    reports them."""
    return measure(
        result.entries,
        result.repositories,
        cache,
        reported=api.registry.size,
        deleted_already=not result.dry_run,
    )
