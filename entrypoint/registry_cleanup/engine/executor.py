"""Carrying out a plan's deletions: in waves (a signature after its subject), concurrently,
each through the one safe delete (engine/deletion.py), a page at a time where the store can
(engine/page_delete.py). ``sweep`` and ``sweep --apply`` both end here, with the pages their
own listing read: no state is shared between them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import cast

from registry_cleanup.domain.plan import Decision
from registry_cleanup.domain.refs import with_tag
from registry_cleanup.domain.safety import ProtectionRules
from registry_cleanup.engine.deletion import DeleteRequest, TagStore, delete_tag
from registry_cleanup.engine.outcome import (
    Outcome,
    Result,
    Status,
    SweepEntry,
    entry_for,
    failed_outcome,
)
from registry_cleanup.engine.page_delete import PageDeletes, delete_page
from registry_cleanup.engine.progress import Progress
from registry_cleanup.errors import CleanupError
from registry_cleanup.gitlab import Repository, TagPage
from registry_cleanup.pool import run_bounded


@dataclass(frozen=True)
class Work:
    """One planned deletion: the tag's repository and the plan's decision."""

    repository: Repository
    decision: Decision


class Executor:
    """Deletes planned tags: where each goes (``store_for``), the pages they were listed in,
    progress, and how many requests in flight."""

    def __init__(
        self,
        store_for: Callable[[Repository], TagStore],
        pages: Mapping[int, list[TagPage]],
        progress: Progress,
        concurrency: int,
    ) -> None:
        self._store_for = store_for
        self._pages = pages
        self._progress = progress
        self._concurrency = concurrency

    def delete_all(self, work: Sequence[Work], protection: ProtectionRules) -> list[SweepEntry]:
        """Delete in waves: a signature or attestation tag goes only after every tag of its
        subject was deleted (or was already gone); if one of them could not be deleted, the
        subject is still there and its signature stays with it."""
        self._progress.start(len(work), "sweep: deleting")
        entries: list[SweepEntry] = []
        outcome: dict[tuple[int, str], str] = {}
        remaining = list(work)
        try:
            while remaining:
                ready = [w for w in remaining if _settled(w, outcome)]
                if not ready:  # plan() never makes a cycle; keep everything if it did
                    ready = remaining
                chosen = {id(w) for w in ready}
                remaining = [w for w in remaining if id(w) not in chosen]
                doable = []
                for item in ready:
                    blocker = _blocker(item, outcome)
                    if blocker is None:
                        doable.append(item)
                        continue
                    reason = f"kept: its subject's tag {blocker!r} was not deleted"
                    entry = entry_for(item.repository, item.decision, Status.skipped, reason)
                    outcome[(item.repository.id, item.decision.tag)] = entry.status
                    self._progress.advance(entry.status)
                    entries.append(entry)
                for item, entry in self._delete_wave(doable, protection):
                    outcome[(item.repository.id, item.decision.tag)] = entry.status
                    self._progress.advance(entry.status)
                    entries.append(entry)
        finally:
            self._progress.close()
        return entries

    def _delete_wave(
        self, items: Sequence[Work], protection: ProtectionRules
    ) -> Iterator[tuple[Work, SweepEntry]]:
        """Delete one wave, ``concurrency`` requests in flight: a page's worth of tags at a
        time where the store can (engine/page_delete.py) and the tags came from GraphQL pages,
        else one tag at a time. Each chain's pages from its far end (page_delete's "Order")."""
        stores = {item.repository.id: self._store_for(item.repository) for item in items}
        # The pages of repositories whose store can delete a page at a time.
        paged = {
            i: pages for i, pages in self._pages.items() if isinstance(stores.get(i), PageDeletes)
        }
        grouped, singles = _by_page(items, paged)
        tasks: list[tuple[list[Work], TagPage | None]] = [
            (batch, self._pages[repo][index])
            for (repo, index), batch in sorted(
                grouped.items(),
                key=lambda group: self._pages[group[0][0]][group[0][1]].position,
                reverse=True,
            )
        ]
        tasks += [([item], None) for item in singles]

        def run(task: tuple[list[Work], TagPage | None]) -> list[tuple[Work, SweepEntry]]:
            batch, page = task
            store = stores[batch[0].repository.id]
            if page is None:
                return [(item, self._delete_one(item, store, protection)) for item in batch]
            return self._delete_page(batch, page, cast("PageDeletes[TagPage]", store), protection)

        for done in run_bounded(tasks, run, self._concurrency):
            yield from done

    def _delete_page(
        self,
        batch: list[Work],
        page: TagPage,
        store: PageDeletes[TagPage],
        protection: ProtectionRules,
    ) -> list[tuple[Work, SweepEntry]]:
        done: list[tuple[Work, SweepEntry]] = []
        pairs: list[tuple[DeleteRequest, Work]] = []
        for item in batch:
            try:
                pairs.append((_request(item, protection), item))
            except CleanupError as error:
                failed = entry_for(item.repository, item.decision, Status.failed, str(error))
                done.append((item, failed))
        item_of = {id(request): item for request, item in pairs}
        outcomes = delete_page(
            [request for request, _ in pairs],
            page,
            store,
            lambda request: self._safe_delete(request, cast(TagStore, store)),
        )
        return done + [(item_of[id(r)], _sweep_entry(item_of[id(r)], o)) for r, o in outcomes]

    def _delete_one(self, item: Work, store: TagStore, protection: ProtectionRules) -> SweepEntry:
        try:
            request = _request(item, protection)
        except CleanupError as error:
            return entry_for(item.repository, item.decision, Status.failed, str(error))
        return _sweep_entry(item, self._safe_delete(request, store))

    @staticmethod
    def _safe_delete(request: DeleteRequest, store: TagStore) -> Outcome:
        try:
            return delete_tag(request, store)
        except CleanupError as error:
            return failed_outcome(request.target, str(error))


def _sweep_entry(item: Work, outcome: Outcome) -> SweepEntry:
    repo, decision = item.repository, item.decision
    if outcome.result is Result.refused_protected:
        # GitLab's own rule protects the tag: the sweep keeps it, as it keeps tags its own
        # protection rules cover, and does not fail for it.
        return entry_for(repo, decision, Status.skipped, REFUSED_PROTECTED)
    entry = entry_for(repo, decision, outcome.status, outcome.reason)
    # The digest the delete resolved: the plan knows it only when an age rule applied,
    # and a report without it could not be undone (restore).
    return replace(entry, digest=outcome.digest or entry.digest)


def _request(item: Work, protection: ProtectionRules) -> DeleteRequest:
    """The safe delete of a planned deletion: only at the digest the plan read, and never
    without one (the sweep's invariant, held in deletion.delete_tag whatever planned it)."""
    return DeleteRequest(
        target=with_tag(item.repository.location, item.decision.tag, what="tag"),
        rules=protection,
        expect_digest=item.decision.digest,
        digest_required=True,
    )


REFUSED_PROTECTED = "GitLab refused: protected container tag"
_GONE = (Status.deleted, Status.absent)


def _by_page(
    items: Sequence[Work], pages: dict[int, list[TagPage]]
) -> tuple[dict[tuple[int, int], list[Work]], list[Work]]:
    """Items grouped by the GraphQL page their tag was listed on (at most 20 each, the
    mutation's limit), and the items of repositories listed without GraphQL."""
    where: dict[tuple[int, str], int] = {}
    for repo_id, repo_pages in pages.items():
        for number, page in enumerate(repo_pages):
            where.update(((repo_id, tag.name), number) for tag in page.tags)
    grouped: dict[tuple[int, int], list[Work]] = {}
    singles: list[Work] = []
    for item in items:
        found = where.get((item.repository.id, item.decision.tag))
        if found is None:
            singles.append(item)
        else:
            grouped.setdefault((item.repository.id, found), []).append(item)
    return grouped, singles


def _settled(item: Work, outcome: dict[tuple[int, str], str]) -> bool:
    """Every tag this one waits for has been dealt with."""
    return all((item.repository.id, tag) in outcome for tag in item.decision.after)


def _blocker(item: Work, outcome: dict[tuple[int, str], str]) -> str | None:
    """A tag of this one's subject that is still there, or None."""
    for tag in item.decision.after:
        if outcome.get((item.repository.id, tag)) not in _GONE:
            return tag
    return None
