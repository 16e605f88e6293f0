"""The sweep: find tags whose branch is gone and delete them, in bounded parallel.

The invariant, held on every path (GraphQL page deletes, the single-tag delete, REST with a job
token, --via registry, --apply, --group):

    A tag is deleted only if its digest was read before the ref lists that made it an orphan,
    and it still points at that digest when it is deleted.

A ref exists before its pipeline pushes its tag, so an image pushed for a ref the lists did not
show came after the planned digest, and the check before the delete sees another one. Hence the
order in ``Sweep.run``: tags (GraphQL pages carry digests), then the ref lists; a digest read
after them (the REST list has none, GraphQL's may be null, the registry's comes last) makes the
sweep list the refs again, and an orphan is a tag neither listing has a ref for. A tag whose
digest is still unknown is kept (plan.DIGEST_UNKNOWN), and ``_delete_one`` refuses a delete
without a planned digest whatever planned it. Each deletion compares the digest once more,
one round trip before the delete (GitLab has no conditional delete: docs/sweep.md, "Races").

Signature and attestation tags are deleted after the tags of their subject, and only when
those were deleted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import cast

from registry_cleanup.domain.image_age import ImageReader, RegistryImage
from registry_cleanup.domain.plan import (
    AGE_UNKNOWN,
    DIGEST_UNKNOWN,
    Action,
    Decision,
    SweepRules,
    TagInfo,
    broken_branch_list,
    orphans,
    plan,
)
from registry_cleanup.domain.refs import attached_subject, slugify, with_tag
from registry_cleanup.domain.safety import (
    GitLabTagRule,
    ProtectionRules,
    TagPattern,
    compile_pattern,
    rules_restricting,
)
from registry_cleanup.engine.deletion import DeleteRequest, TagStore, delete_tag
from registry_cleanup.engine.outcome import Outcome, Result, Status, failed_outcome
from registry_cleanup.engine.page_delete import PageDeletes, delete_page
from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.gitlab import (
    GitLabApi,
    GitLabApiError,
    NotFoundError,
    Repository,
    TagDetail,
    TagPage,
)
from registry_cleanup.gitlab.tag_store import ApiTagStore
from registry_cleanup.output.progress import Progress
from registry_cleanup.pool import DEFAULT_CONCURRENCY, run_bounded

KEPT = "kept"


@dataclass(frozen=True)
class SweepOptions:
    repositories: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    protect: tuple[str, ...] = ()
    protect_semver: bool = True
    keep_n: int | None = None
    older_than: timedelta | None = None
    min_age: timedelta = timedelta(minutes=5)
    default_branch: str | None = None
    delete: bool = False
    trust_branch_list: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    # Fetch the digest of every tag that may go even without an age rule (sweep --plan-out):
    # a plan is applied only to tags still at the digest it recorded.
    record_digests: bool = False

    def __post_init__(self) -> None:
        # A bad pattern is refused before the first request, not after listing every tag.
        for option, patterns in (
            ("--include", self.include),
            ("--exclude", self.exclude),
            ("--protect", self.protect),
        ):
            for pattern in patterns:
                compile_pattern(pattern, option=option)


@dataclass(frozen=True)
class SweepEntry:
    repository: str
    tag: str
    status: str  # a report.Status value, or "kept"
    reason: str
    digest: str | None = None
    created_at: str | None = None


@dataclass
class SweepResult:
    project: str
    dry_run: bool
    branches: int = 0
    default_branch: str | None = None
    guard: str | None = None
    # Why nothing may be deleted whatever the flags say (the git tags could not be listed).
    refusal: str | None = None
    refused: bool = False
    notes: list[str] = field(default_factory=list)
    entries: list[SweepEntry] = field(default_factory=list)
    repositories: list[Repository] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = Counter(entry.status for entry in self.entries)
        keys = [KEPT, *(status.value for status in Status)]
        return {key: counts.get(key, 0) for key in keys}

    @property
    def failed(self) -> bool:
        return self.refused or any(e.status == Status.failed.value for e in self.entries)


@dataclass
class _Inventory:
    """What the listing found, by repository id: the tag names, and what is known of each tag
    (digest, creation time), completed after the ref lists where the listing said too little."""

    tags: dict[int, list[str]]
    known: dict[int, dict[str, TagDetail]]


@dataclass(frozen=True)
class _RegistryRead:
    """What reading tags from the registry found: tags it does not have, tags it would not
    show, and whether it gave digests GitLab had not."""

    gone: set[str]
    unreadable: set[str]
    digests: bool
    # Why tags GitLab could not read were not read here either (the registry refused).
    note: str | None = None


@dataclass(frozen=True)
class _Completion:
    """What reading after the ref lists did: whether it read digests (the refs must then be
    listed again), and the registry's notes for the end of the run."""

    digests_read: bool
    notes: list[str]


@dataclass(frozen=True)
class _Refs:
    """What the ref lists said: a tag whose slug is a live ref's is kept."""

    branches: tuple[str, ...]
    git_tags: tuple[str, ...]
    default_branch: str | None
    tag_rules: list[GitLabTagRule] | None

    def union(self, later: _Refs) -> _Refs:
        """Both listings' refs: an orphan is a tag neither listing has a ref for."""
        return replace(
            self,
            branches=tuple(dict.fromkeys(self.branches + later.branches)),
            git_tags=tuple(dict.fromkeys(self.git_tags + later.git_tags)),
        )


def _undated_note(count: int, registry_read: bool) -> str:
    """The one line that says why tags were kept for an unknown age, and what would date them."""
    if registry_read:
        why = (
            "neither GitLab nor the registry knows when they were created (no platform image's "
            "config says)"
        )
    else:
        why = (
            "GitLab gives no creation time for image indexes (multi-platform or attested "
            "builds) without its registry metadata database; registry credentials "
            "(CI_REGISTRY, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD) would let the sweep read "
            "it from the registry"
        )
    return f"{count} tags without a branch were kept because their age is unknown: {why}"


def _info(name: str, detail: TagDetail | None) -> TagInfo:
    if detail is None:
        return TagInfo(name)
    return TagInfo(name, created_at=detail.created_at, digest=detail.digest or None)


@dataclass(frozen=True)
class _Work:
    repository: Repository
    decision: Decision


class Sweep:
    """One sweep of one project."""

    def __init__(
        self,
        api: GitLabApi,
        options: SweepOptions,
        progress: Progress,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        store_for: Callable[[Repository], TagStore] | None = None,
        images: ImageReader | None = None,
    ) -> None:
        self._api = api
        self._options = options
        self._progress = progress
        self._now = now
        # The registry, read for what GitLab cannot say of a tag (domain/image_age.py); None without
        # registry credentials.
        self._images = images
        # Where deletions go: GitLab's tag endpoint by default, or one shared RegctlSession
        # (configured and logged in once, before the pool starts) for the registry path.
        self._store_for = store_for or (
            lambda repository: ApiTagStore(api, repository, images=images)
        )
        self._pages: dict[int, list[TagPage]] = {}

    def run(self) -> SweepResult:
        options = self._options
        result = SweepResult(project=self._api.project_ref, dry_run=not options.delete)
        repositories = self._select(self._api.repositories())
        result.repositories = repositories
        # Digests are needed for every tag that may be deleted, or recorded in a plan.
        needs_digests = options.delete or options.record_digests
        inventory = self._list_tags(repositories, result, needs_digests)
        # Only now the refs: every tag seen above was pushed after its ref existed, so a ref
        # created meanwhile cannot lose its tag.
        refs = self._read_refs(result, with_rules=True)
        # The branch list marks the default branch; a job token cannot read the project.
        default_branch = options.default_branch or refs.default_branch
        result.default_branch = default_branch
        rules = self._rules(default_branch, result, refs.tag_rules, needs_digests)
        completion = self._complete(repositories, inventory, refs, rules)
        if completion.digests_read and needs_digests:
            # A digest read after the ref lists proves nothing about them: a branch created
            # again just before it was read has its new image there. So the refs are listed
            # again, and a tag is an orphan only if neither listing has its ref.
            refs = refs.union(self._read_refs(result, with_rules=False))
        result.branches = len(refs.branches)
        self._guard(result, repositories, inventory, refs, rules)
        work = self._plan(result, repositories, inventory, refs, rules)
        self._closing_notes(result, completion.notes)
        if not options.delete or result.refused:
            result.entries += [self._not_deleted(item, result) for item in work]
        else:
            result.entries += self._delete_all(work, rules.protection)
        result.entries.sort(key=lambda e: (e.repository, e.tag))
        return result

    # -- steps ------------------------------------------------------------------------------

    def _list_tags(
        self, repositories: list[Repository], result: SweepResult, needs_digests: bool
    ) -> _Inventory:
        """Every repository's tags. GraphQL pages (20 tags each, with digests and creation
        times) when an age rule needs them and whenever digests are: each page is read again
        just before its tags go, so digests are checked 20 at a time. Otherwise, or where
        GraphQL is unavailable, the REST tag list (100 names a page) suffices."""
        options = self._options
        needs_age = SweepRules(
            keep_n=options.keep_n, older_than=options.older_than, min_age=options.min_age
        ).needs_age
        self._pages = {}
        if needs_age or needs_digests:
            # Each repository's pages are cursor-chained; the repositories go side by side.
            listed = run_bounded(
                repositories,
                lambda repo: (repo, self._api.pages.listing(repo)),
                options.concurrency,
            )
            for repo, listing in listed:
                if listing is not None:
                    self._pages[repo.id] = listing.pages
                    if listing.note is not None:
                        result.notes.append(listing.note)
        inventory = _Inventory(tags={}, known={})
        for repo in repositories:
            pages = self._pages.get(repo.id)
            if pages is not None:
                inventory.known[repo.id] = {tag.name: tag for page in pages for tag in page.tags}
                inventory.tags[repo.id] = list(inventory.known[repo.id])
            else:
                inventory.known[repo.id] = {}
                inventory.tags[repo.id] = list(self._api.registry.tag_names(repo))
        return inventory

    def _complete(
        self,
        repositories: list[Repository],
        inventory: _Inventory,
        refs: _Refs,
        rules: SweepRules,
    ) -> _Completion:
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
            if wanted and repo.id in self._pages:
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
        return _Completion(digests_read, notes)

    def _guard(
        self,
        result: SweepResult,
        repositories: list[Repository],
        inventory: _Inventory,
        refs: _Refs,
        rules: SweepRules,
    ) -> None:
        """With --delete, nothing goes when the branch list looks broken (unless trusted) or
        the git tags could not be listed."""
        options = self._options
        orphan_count = sum(
            len(orphans(inventory.tags[repo.id], refs.branches, rules, refs.git_tags))
            for repo in repositories
        )
        result.guard = broken_branch_list(orphan_count, refs.branches, result.default_branch)
        if result.guard is not None and options.delete and not options.trust_branch_list:
            result.refused = True
        if result.refusal is not None and options.delete:
            result.refused = True

    def _plan(
        self,
        result: SweepResult,
        repositories: list[Repository],
        inventory: _Inventory,
        refs: _Refs,
        rules: SweepRules,
    ) -> list[_Work]:
        """One decision per tag: the kept ones into the result, the deletions returned."""
        work: list[_Work] = []
        for repo in repositories:
            known = inventory.known[repo.id]
            infos = [_info(name, known.get(name)) for name in inventory.tags[repo.id]]
            unknown_subjects = []
            for decision in plan(infos, refs.branches, rules, self._now(), refs.git_tags):
                if decision.action is Action.delete:
                    work.append(_Work(repo, decision))
                else:
                    result.entries.append(_entry(repo, decision, KEPT, decision.reason))
                    if decision.notable:
                        unknown_subjects.append(decision.tag)
            if unknown_subjects:
                shown = ", ".join(unknown_subjects[:5])
                more = f" and {len(unknown_subjects) - 5} more" if len(unknown_subjects) > 5 else ""
                result.notes.append(
                    f"{repo.location}: {len(unknown_subjects)} signature/attestation tags belong "
                    f"to digests no tag points at; kept: {shown}{more}"
                )
        return work

    def _closing_notes(self, result: SweepResult, registry_notes: list[str]) -> None:
        """One line each for what the registry would not show, and for tags kept because
        their age or digest is unknown, with what would tell them."""
        result.notes += registry_notes
        kept_undated = sum(1 for entry in result.entries if entry.reason == AGE_UNKNOWN)
        if kept_undated:
            result.notes.append(_undated_note(kept_undated, self._images is not None))
        undigested = sum(1 for entry in result.entries if entry.reason == DIGEST_UNKNOWN)
        if undigested:
            later = (
                "the next run looks at them again"
                if self._images is not None
                else "registry credentials (CI_REGISTRY, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD) "
                "would let the sweep read them from the registry"
            )
            result.notes.append(
                f"{undigested} tags without a branch were kept because their digest was not "
                f"known before the branch list was read; {later}"
            )

    def _not_deleted(self, item: _Work, result: SweepResult) -> SweepEntry:
        """A planned deletion of a dry run, or of a run the guard refused."""
        status = Status.skipped.value if result.refused else Status.would_delete.value
        why = "refused by the guard" if result.refused else "dry run: nothing was changed"
        if result.refusal is not None and self._options.delete:
            why = "refused: the git tags could not be listed"
        return _entry(item.repository, item.decision, status, f"{item.decision.reason}; {why}")

    def _select(self, repositories: list[Repository]) -> list[Repository]:
        wanted = self._options.repositories
        if not wanted:
            return repositories
        chosen: dict[int, Repository] = {}
        for name in wanted:
            match = [r for r in repositories if name in (r.path, r.location, str(r.id))]
            if not match:
                known = ", ".join(r.path for r in repositories) or "none"
                raise InputError(
                    f"--repository {name!r} is not a container repository of project "
                    f"{self._api.project_ref} (it has: {known})"
                )
            chosen.update((r.id, r) for r in match)
        return list(chosen.values())

    def _list_git_tags(self) -> list[str] | GitLabApiError:
        """The git tag list, or GitLab's refusal (read alongside the branches, judged after)."""
        try:
            return list(self._api.refs.git_tags())
        except GitLabApiError as error:
            return error

    def _git_tags(
        self, result: SweepResult, branches: list[str], answer: list[str] | GitLabApiError
    ) -> list[str]:
        """The git tags, whose tag pipelines push their slugs. If GitLab will not list them
        (a token that may not read the repository, or one GitLab does not take there), any
        orphan may be a tag pipeline's image: nothing is deleted then."""
        if not isinstance(answer, GitLabApiError):
            return answer
        if isinstance(answer, NotFoundError):
            if not branches:
                return []  # no repository (lib/api/tags.rb: not_found! unless repo_exists?)
            # Branches were listed, so the repository exists: this 404 is GitLab not taking
            # the token here (a job token where it is not allowed is anonymous).
            result.refusal = (
                "GitLab answered 404 to the git tag list although the branches were listed "
                "(it did not take this token there); without the git tags, any tag without a "
                "branch may be a tag pipeline's image, so nothing is deleted (use an access "
                "token with the Reporter role)"
            )
            return []
        result.refusal = (
            f"{answer}; without the git tags, any tag without a branch may be a tag "
            "pipeline's image, so nothing is deleted (use a token that may read the "
            "repository: Reporter, or a job token from GitLab 18.3)"
        )
        return []

    def _rules(
        self,
        default_branch: str | None,
        result: SweepResult,
        tag_rules: list[GitLabTagRule] | None,
        digests_required: bool,
    ) -> SweepRules:
        options = self._options
        gitlab_patterns: list[str] = []
        if tag_rules is None:
            result.notes.append(
                "could not read GitLab's protected container tag rules (that needs the "
                "Maintainer role); GitLab still refuses to delete protected tags"
            )
        elif tag_rules:
            # GitLab applies a rule to callers below its minimum_access_level_for_delete.
            level = self._api.settings.caller_access_level()
            if level is None:
                result.notes.append(
                    "could not tell this token's access level in the project; every "
                    "protected container tag rule is treated as applying to it"
                )
            gitlab_patterns = rules_restricting(tag_rules, level)
        return SweepRules(
            protection=ProtectionRules.build(
                default_branch_tag=slugify(default_branch) if default_branch else None,
                patterns=options.protect,
                protect_semver=options.protect_semver,
            ),
            include=tuple(compile_pattern(p, option="--include") for p in options.include),
            exclude=tuple(compile_pattern(p, option="--exclude") for p in options.exclude),
            gitlab_protected=tuple(_gitlab_pattern(p) for p in gitlab_patterns),
            keep_n=options.keep_n,
            older_than=options.older_than,
            min_age=options.min_age,
            digests_required=digests_required,
        )

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
    ) -> _RegistryRead:
        """Fill ``known`` from the registry for the named tags, concurrently; each tag's
        manifest once, then each platform image's config once. A digest GitLab gave (read
        before the ref lists) is kept; the registry's fills only what GitLab did not say."""
        images = self._images
        if images is None:
            return _RegistryRead(gone=set(), unreadable=set(names), digests=False)

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
        return _RegistryRead(gone, set(unreadable), digests, note)

    def _read_refs(self, result: SweepResult, *, with_rules: bool) -> _Refs:
        """Branches and git tags, and GitLab's protected container tag rules with the first
        listing, all at once."""
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="refs") as pool:
            branch_listing = pool.submit(lambda: list(self._api.refs.branches()))
            git_tag_listing = pool.submit(self._list_git_tags)
            tag_rule_listing = pool.submit(self._api.protected_tag_rules) if with_rules else None
            branch_list = branch_listing.result()
            git_tag_answer = git_tag_listing.result()
            tag_rules = tag_rule_listing.result() if tag_rule_listing is not None else None
        branches = tuple(branch.name for branch in branch_list)
        return _Refs(
            branches=branches,
            git_tags=tuple(self._git_tags(result, list(branches), git_tag_answer)),
            default_branch=next((b.name for b in branch_list if b.default), None),
            tag_rules=tag_rules,
        )

    def delete_decisions(
        self, work: Sequence[tuple[Repository, Decision]], protection: ProtectionRules
    ) -> list[SweepEntry]:
        """Carry out decisions made earlier (sweep --apply), with the same safe delete as run."""
        return self._delete_all([_Work(repo, decision) for repo, decision in work], protection)

    def _delete_all(self, work: Sequence[_Work], protection: ProtectionRules) -> list[SweepEntry]:
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
                    entry = _entry(item.repository, item.decision, Status.skipped.value, reason)
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
        self, items: Sequence[_Work], protection: ProtectionRules
    ) -> Iterator[tuple[_Work, SweepEntry]]:
        """Delete one wave, ``concurrency`` requests in flight: a page's worth of tags at a
        time where the store can (engine/page_delete.py) and the tags came from GraphQL pages,
        else one tag at a time. Each chain's pages from its far end (page_delete's "Order")."""
        stores = {item.repository.id: self._store_for(item.repository) for item in items}
        paged = {id_: s for id_, s in stores.items() if isinstance(s, PageDeletes)}
        grouped, singles = _by_page(items, {k: v for k, v in self._pages.items() if k in paged})
        tasks: list[tuple[list[_Work], TagPage | None]] = [
            (batch, self._pages[repo][index])
            for (repo, index), batch in sorted(
                grouped.items(),
                key=lambda group: self._pages[group[0][0]][group[0][1]].position,
                reverse=True,
            )
        ]
        tasks += [([item], None) for item in singles]

        def run(task: tuple[list[_Work], TagPage | None]) -> list[tuple[_Work, SweepEntry]]:
            batch, page = task
            store = stores[batch[0].repository.id]
            if page is None:
                return [(item, self._delete_one(item, store, protection)) for item in batch]
            return self._delete_page(batch, page, cast("PageDeletes[TagPage]", store), protection)

        for done in run_bounded(tasks, run, self._options.concurrency):
            yield from done

    def _delete_page(
        self,
        batch: list[_Work],
        page: TagPage,
        store: PageDeletes[TagPage],
        protection: ProtectionRules,
    ) -> list[tuple[_Work, SweepEntry]]:
        done: list[tuple[_Work, SweepEntry]] = []
        pairs: list[tuple[DeleteRequest, _Work]] = []
        for item in batch:
            try:
                pairs.append((_request(item, protection), item))
            except CleanupError as error:
                done.append((item, _entry(item.repository, item.decision, "failed", str(error))))
        item_of = {id(request): item for request, item in pairs}
        outcomes = delete_page(
            [request for request, _ in pairs],
            page,
            store,
            lambda request: self._safe_delete(request, cast(TagStore, store)),
        )
        return done + [(item_of[id(r)], _sweep_entry(item_of[id(r)], o)) for r, o in outcomes]

    def _delete_one(self, item: _Work, store: TagStore, protection: ProtectionRules) -> SweepEntry:
        try:
            request = _request(item, protection)
        except CleanupError as error:
            return _entry(item.repository, item.decision, Status.failed.value, str(error))
        return _sweep_entry(item, self._safe_delete(request, store))

    @staticmethod
    def _safe_delete(request: DeleteRequest, store: TagStore) -> Outcome:
        try:
            return delete_tag(request, store)
        except CleanupError as error:
            return failed_outcome(request.target, str(error))


def _sweep_entry(item: _Work, outcome: Outcome) -> SweepEntry:
    repo, decision = item.repository, item.decision
    if outcome.result is Result.refused_protected:
        # GitLab's own rule protects the tag: the sweep keeps it, as it keeps tags its own
        # protection rules cover, and does not fail for it.
        return _entry(repo, decision, Status.skipped.value, REFUSED_PROTECTED)
    entry = _entry(repo, decision, outcome.status.value, outcome.reason)
    # The digest the delete resolved: the plan knows it only when an age rule applied,
    # and a report without it could not be undone (restore).
    return replace(entry, digest=outcome.digest or entry.digest)


def _request(item: _Work, protection: ProtectionRules) -> DeleteRequest:
    """The safe delete of a planned deletion: only at the digest the plan read, and never
    without one (the sweep's invariant, held in deletion.delete_tag whatever planned it)."""
    return DeleteRequest(
        target=with_tag(item.repository.location, item.decision.tag, what="tag"),
        rules=protection,
        expect_digest=item.decision.digest,
        digest_required=True,
    )


REFUSED_PROTECTED = "GitLab refused: protected container tag"
_GONE = (Status.deleted.value, Status.absent.value)


def _by_page(
    items: Sequence[_Work], pages: dict[int, list[TagPage]]
) -> tuple[dict[tuple[int, int], list[_Work]], list[_Work]]:
    """Items grouped by the GraphQL page their tag was listed on (at most 20 each, the
    mutation's limit), and the items of repositories listed without GraphQL."""
    where: dict[tuple[int, str], int] = {}
    for repo_id, repo_pages in pages.items():
        for number, page in enumerate(repo_pages):
            where.update(((repo_id, tag.name), number) for tag in page.tags)
    grouped: dict[tuple[int, int], list[_Work]] = {}
    singles: list[_Work] = []
    for item in items:
        found = where.get((item.repository.id, item.decision.tag))
        if found is None:
            singles.append(item)
        else:
            grouped.setdefault((item.repository.id, found), []).append(item)
    return grouped, singles


def _settled(item: _Work, outcome: dict[tuple[int, str], str]) -> bool:
    """Every tag this one waits for has been dealt with."""
    return all((item.repository.id, tag) in outcome for tag in item.decision.after)


def _blocker(item: _Work, outcome: dict[tuple[int, str], str]) -> str | None:
    """A tag of this one's subject that is still there, or None."""
    for tag in item.decision.after:
        if outcome.get((item.repository.id, tag)) not in _GONE:
            return tag
    return None


def _entry(repo: Repository, decision: Decision, status: str, reason: str) -> SweepEntry:
    created = decision.created_at.isoformat() if decision.created_at else None
    return SweepEntry(
        repository=repo.location,
        tag=decision.tag,
        status=status,
        reason=reason,
        digest=decision.digest,
        created_at=created,
    )


def _gitlab_pattern(pattern: str) -> TagPattern:
    try:
        return compile_pattern(pattern, option="GitLab protected tag rule")
    except InputError:
        # A rule RE2 cannot read (GitLab should not have stored it): protect everything.
        return compile_pattern(".*")
