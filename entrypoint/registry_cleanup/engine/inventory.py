"""What the listing found, and completing it: every repository's tags (GraphQL pages, or the
REST list), then, after the ref lists, what the listing did not say of the candidates (their
digests and creation times, from GitLab's tag details or the registry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from registry_cleanup.domain.image_age import ImageReader, RegistryImage
from registry_cleanup.domain.plan import SweepRules, TagInfo, orphans
from registry_cleanup.domain.refs import attached_subject, with_tag
from registry_cleanup.engine.ref_lists import Refs
from registry_cleanup.errors import CleanupError
from registry_cleanup.gitlab import GitLabApi, Repository, TagDetail, TagPage
from registry_cleanup.pool import run_bounded

if TYPE_CHECKING:
    from registry_cleanup.engine.options import SweepOptions


@dataclass
class Inventory:
    """What the listing found, by repository id: the tag names, and what is known of each tag
    (digest, creation time), completed after the ref lists where the listing said too little."""

    tags: dict[int, list[str]]
    known: dict[int, dict[str, TagDetail]]
    # The GraphQL pages each repository was listed in (none for a REST listing): the page
    # deletes read them again (engine/page_delete.py).
    pages: dict[int, list[TagPage]] = field(default_factory=dict)
    # What the listing has to say at the end of the run (a chain read out of order).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegistryRead:
    """What reading tags from the registry found: tags it does not have, tags it would not
    show, and whether it gave digests GitLab had not."""

    gone: set[str]
    unreadable: set[str]
    digests: bool
    # Why tags GitLab could not read were not read here either (the registry refused).
    note: str | None = None


@dataclass(frozen=True)
class Completion:
    """What reading after the ref lists did: whether it read digests (the refs must then be
    listed again), and the registry's notes for the end of the run."""

    digests_read: bool
    notes: list[str]


def info(name: str, detail: TagDetail | None) -> TagInfo:
    if detail is None:
        return TagInfo(name)
    return TagInfo(name, created_at=detail.created_at, digest=detail.digest or None)


class TagReader:
    """Reads a project's tags: the listing, then the completion."""

    def __init__(self, api: GitLabApi, options: SweepOptions, images: ImageReader | None) -> None:
        self._api = api
        self._options = options
        # The registry, read for what GitLab cannot say of a tag (domain/image_age.py); None
        # without registry credentials.
        self._images = images

    def list_tags(self, repositories: list[Repository], needs_digests: bool) -> Inventory:
        """Every repository's tags. GraphQL pages (20 tags each, with digests and creation
        times) when an age rule needs them and whenever digests are: each page is read again
        just before its tags go, so digests are checked 20 at a time. Otherwise, or where
        GraphQL is unavailable, the REST tag list (100 names a page) suffices."""
        options = self._options
        needs_age = SweepRules(
            keep_n=options.keep_n, older_than=options.older_than, min_age=options.min_age
        ).needs_age
        inventory = Inventory(tags={}, known={})
        if needs_age or needs_digests:
            # Each repository's pages are cursor-chained; the repositories go side by side.
            listed = run_bounded(
                repositories,
                lambda repo: (repo, self._api.pages.listing(repo)),
                options.concurrency,
            )
            for repo, listing in listed:
                if listing is not None:
                    inventory.pages[repo.id] = listing.pages
                    if listing.note is not None:
                        inventory.notes.append(listing.note)
        for repo in repositories:
            pages = inventory.pages.get(repo.id)
            if pages is not None:
                inventory.known[repo.id] = {tag.name: tag for page in pages for tag in page.tags}
                inventory.tags[repo.id] = list(inventory.known[repo.id])
            else:
                inventory.known[repo.id] = {}
                inventory.tags[repo.id] = list(self._api.registry.tag_names(repo))
        return inventory

    def complete(
        self,
        repositories: list[Repository],
        inventory: Inventory,
        refs: Refs,
        rules: SweepRules,
    ) -> Completion:
        """Read now, after the ref lists, what the listing did not say of the candidates: all
        of it from the REST list, GraphQL's null digests, and from the registry what GitLab
        could not say (an image index without the metadata database: no creation time, often
        no digest, and "404 Tag Not Found" from the REST detail). True when a digest was read
        here: the ref lists must then be read again."""
        concurrency = self._options.concurrency
        digests_read = False
        notes: list[str] = []
        for repo in repositories:
            tags, known = inventory.tags[repo.id], inventory.known[repo.id]
            candidates = orphans(tags, refs.branches, rules, refs.git_tags)
            wanted = self._details_wanted(tags, candidates, known, rules)
            found: dict[str, TagDetail] = {}
            if wanted and repo.id in inventory.pages:
                found = self._api.registry.tags(repo, wanted, concurrency)
            elif wanted:
                found = self._api.tag_details(repo, wanted, concurrency)
            known |= found
            digests_read |= any(detail.digest for detail in found.values())
            unread = [name for name in wanted if name not in found]
            undated = self._undated(candidates, known, rules)
            asked = list(dict.fromkeys([*unread, *undated]))
            if not asked:
                continue
            read = self._from_registry(repo, asked, known)
            digests_read |= read.digests
            notes += [read.note] if read.note is not None else []
            # A listed tag neither GitLab nor the registry finds went since the listing.
            inventory.tags[repo.id] = [name for name in tags if name not in read.gone]
            for name in read.unreadable:
                known.setdefault(name, TagDetail(name, "", None))
        return Completion(digests_read, notes)

    def _details_wanted(
        self,
        names: list[str],
        candidates: list[str],
        known: dict[str, TagDetail],
        rules: SweepRules,
    ) -> list[str]:
        """The tags whose digest or creation time must still be read from GitLab.

        GraphQL pages bring every tag's at no extra cost (``known``); the REST list brings
        names only. Read are the candidates' where an age rule needs them or digests are
        required, those GraphQL listed without a digest, and, when the repository has
        signature or attestation tags (whose subjects are found by digest), every tag's."""
        attached = any(attached_subject(name) is not None for name in names)

        def lacking(name: str) -> bool:
            detail = known.get(name)
            if detail is None:
                return rules.digests_required or rules.needs_age or attached
            return rules.digests_required and not detail.digest

        return [name for name in (names if attached else candidates) if lacking(name)]

    def _undated(
        self, candidates: list[str], known: dict[str, TagDetail], rules: SweepRules
    ) -> list[str]:
        """Candidates GitLab listed without a creation time an age rule needs, or without the
        digest a delete needs."""
        found = []
        for name in candidates:
            detail = known.get(name)
            if detail is None:
                continue
            if (rules.needs_age and detail.created_at is None) or (
                rules.digests_required and not detail.digest
            ):
                found.append(name)
        return found

    def _from_registry(
        self, repo: Repository, names: list[str], known: dict[str, TagDetail]
    ) -> RegistryRead:
        """Fill ``known`` from the registry for the named tags, concurrently; each tag's
        manifest once, then each platform image's config once. A digest GitLab gave (read
        before the ref lists) is kept; the registry's fills only what GitLab did not say."""
        images = self._images
        if images is None:
            return RegistryRead(gone=set(), unreadable=set(names), digests=False)

        def read(name: str) -> tuple[str, RegistryImage | CleanupError | None]:
            try:
                return name, images.image(with_tag(repo.location, name, what="tag"))
            except CleanupError as error:  # refused or unreachable: unreadable, not fatal
                return name, error

        gone: set[str] = set()
        unreadable: dict[str, CleanupError] = {}
        digests = False
        for name, image in run_bounded(names, read, self._options.concurrency):
            if isinstance(image, CleanupError):
                unreadable[name] = image
                continue
            if image is None:
                gone.add(name)
                continue
            earlier = known.get(name) or TagDetail(name, "", None)
            digests |= not earlier.digest
            known[name] = TagDetail(
                name, earlier.digest or image.digest, earlier.created_at or image.created_at
            )
        note = None
        if unreadable:
            first = next(iter(unreadable.values()))
            note = (
                f"{repo.location}: {len(unreadable)} tags GitLab could not read could not be "
                f"read from the registry either ({first}); they were kept"
            )
        return RegistryRead(gone, set(unreadable), digests, note)
