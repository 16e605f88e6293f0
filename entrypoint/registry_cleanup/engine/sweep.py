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
digest is still unknown is kept (plan.DIGEST_UNKNOWN), and the safe delete refuses a delete
without a planned digest whatever planned it (``DeleteRequest.digest_required``). Each
deletion compares the digest once more, one round trip before the delete (GitLab has no
conditional delete: docs/sweep.md, "Races").

The run is its steps: list the tags (engine/inventory.py), read the refs
(engine/ref_lists.py), complete what the listing did not say, guard, plan (domain/plan.py),
then delete through the executor (engine/executor.py). Signature and attestation tags are
deleted after the tags of their subject, and only when those were deleted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from registry_cleanup.domain.guard import broken_branch_list
from registry_cleanup.domain.image_age import ImageReader
from registry_cleanup.domain.plan import (
    Action,
    SweepRules,
    Why,
    orphans,
    plan,
)
from registry_cleanup.domain.safety import (
    GitLabTagRule,
    rules_restricting,
)
from registry_cleanup.engine.deletion import TagStore
from registry_cleanup.engine.executor import Executor, Work
from registry_cleanup.engine.inventory import Inventory, TagReader, info
from registry_cleanup.engine.options import SweepOptions
from registry_cleanup.engine.outcome import Status, SweepEntry, entry_for
from registry_cleanup.engine.progress import Progress
from registry_cleanup.engine.ref_lists import Refs, read_refs
from registry_cleanup.engine.sizes import ManifestSource, Sizes, measure_sweep, start_reading
from registry_cleanup.errors import InputError
from registry_cleanup.gitlab import (
    GitLabApi,
    Repository,
    TagPage,
)
from registry_cleanup.gitlab.registry import named, paths_of


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
    # The GraphQL pages each repository was listed in (by repository id), for deleting a page
    # at a time: `sweep --apply` deletes through the pages of its own fresh look.
    listing: dict[int, list[TagPage]] = field(default_factory=dict)
    # What the run frees (sweep --sizes; engine/sizes.py), or None when not asked.
    sizes: Sizes | None = None

    @property
    def project_path(self) -> str | None:
        """The project's full path, as its repositories name it (the project may have been
        given by id); None without a repository."""
        paths = {repository.project_path for repository in self.repositories}
        return paths.pop() if len(paths) == 1 else None

    def summary(self) -> dict[str, int]:
        counts = Counter(entry.status for entry in self.entries)
        return {status.value: counts.get(status, 0) for status in Status}

    @property
    def failed(self) -> bool:
        return self.refused or any(e.status == Status.failed for e in self.entries)


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


class Sweep:
    """One sweep of one project."""

    def __init__(
        self,
        api: GitLabApi,
        options: SweepOptions,
        progress: Progress,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        store_for: Callable[[Repository], TagStore],
        images: ImageReader | None = None,
        sizes: ManifestSource | None = None,
    ) -> None:
        self._api = api
        self._options = options
        self._progress = progress
        self._now = now
        # The registry, read for what GitLab cannot say of a tag (domain/image_age.py); None
        # without registry credentials.
        self._images = images
        # Where deletions go (GitLab's tag endpoint, or one shared RegctlSession for the
        # registry path): the command decides (cli/connect.py). Public: sweep --apply deletes
        # through the same stores.
        self.store_for = store_for
        # The registry, read for the storage figures (sweep --sizes) once the run is done.
        self._sizes = sizes

    def run(self) -> SweepResult:
        options = self._options
        result = SweepResult(project=self._api.project_ref, dry_run=not options.delete)
        repositories = self._select(self._api.repositories())
        result.repositories = repositories
        # Digests are needed for every tag that may be deleted, or recorded in a plan.
        needs_digests = options.delete or options.record_digests
        reader = TagReader(self._api, options, self._images)
        # The sizes read every tag's image: GraphQL's pages give their digests (each image read
        # once, however many tags it has) and creation times (no config read for the page).
        inventory = reader.list_tags(repositories, needs_digests or self._sizes is not None)
        # With --sizes, every listed tag's image is read from now on, beside the other steps.
        reading = None
        if self._sizes is not None:
            reading = start_reading(self._sizes, repositories, inventory, options.concurrency)
        result.notes += inventory.notes
        # Only now the refs: every tag seen above was pushed after its ref existed, so a ref
        # created meanwhile cannot lose its tag.
        refs = read_refs(self._api, with_rules=True)
        result.refusal = refs.refusal
        # The branch list marks the default branch; a job token cannot read the project.
        default_branch = options.default_branch or refs.default_branch
        result.default_branch = default_branch
        rules = self._rules(default_branch, result, refs.tag_rules, needs_digests)
        completion = reader.complete(repositories, inventory, refs, rules)
        if completion.digests_read and needs_digests:
            # A digest read after the ref lists proves nothing about them: a branch created
            # again just before it was read has its new image there. So the refs are listed
            # again, and a tag is an orphan only if neither listing has its ref.
            refs = refs.union(read_refs(self._api, with_rules=False))
            result.refusal = refs.refusal
        result.branches = len(refs.branches)
        self._guard(result, repositories, inventory, refs, rules)
        work = self._plan(result, repositories, inventory, refs, rules)
        self._closing_notes(result, completion.notes)
        if not options.delete or result.refused:
            result.entries += [self._not_deleted(item, result) for item in work]
        else:
            executor = Executor(
                self.store_for, inventory.pages, self._progress, options.concurrency
            )
            result.entries += executor.delete_all(work, rules.protection)
        result.entries.sort(key=lambda e: (e.repository, e.tag))
        result.listing = inventory.pages
        if reading is not None:
            result.sizes = measure_sweep(result, self._api, reading.done())
        return result

    # -- steps ------------------------------------------------------------------------------

    def _guard(
        self,
        result: SweepResult,
        repositories: list[Repository],
        inventory: Inventory,
        refs: Refs,
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
        inventory: Inventory,
        refs: Refs,
        rules: SweepRules,
    ) -> list[Work]:
        """One decision per tag: the kept ones into the result, the deletions returned."""
        work: list[Work] = []
        for repo in repositories:
            known = inventory.known[repo.id]
            infos = [info(name, known.get(name)) for name in inventory.tags[repo.id]]
            unknown_subjects = []
            for decision in plan(infos, refs.branches, rules, self._now(), refs.git_tags):
                if decision.action is Action.delete:
                    work.append(Work(repo, decision))
                else:
                    result.entries.append(
                        entry_for(repo, decision, Status.kept, decision.reason, decision.why)
                    )
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
        kept_undated = sum(1 for entry in result.entries if entry.why is Why.age_unknown)
        if kept_undated:
            result.notes.append(_undated_note(kept_undated, self._images is not None))
        undigested = sum(1 for entry in result.entries if entry.why is Why.digest_unknown)
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

    def _not_deleted(self, item: Work, result: SweepResult) -> SweepEntry:
        """A planned deletion of a dry run, or of a run the guard refused."""
        status = Status.skipped if result.refused else Status.would_delete
        why = "refused by the guard" if result.refused else "dry run: nothing was changed"
        if result.refusal is not None and self._options.delete:
            why = "refused: the git tags could not be listed"
        decision = item.decision
        entry = entry_for(item.repository, decision, status, decision.reason, decision.why)
        return replace(entry, qualifier=why)

    def _select(self, repositories: list[Repository]) -> list[Repository]:
        wanted = self._options.repositories
        if not wanted:
            return repositories
        chosen: dict[int, Repository] = {}
        for name in wanted:
            match = named(repositories, name)
            if not match:
                raise InputError(
                    f"--repository {name!r} is not a container repository of project "
                    f"{self._api.project_ref} (it has: {paths_of(repositories)})"
                )
            chosen.update((r.id, r) for r in match)
        return list(chosen.values())

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
        return options.rules(default_branch, gitlab_patterns, digests_required=digests_required)
