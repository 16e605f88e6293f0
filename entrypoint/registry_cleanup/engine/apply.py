"""``sweep --apply``: delete exactly what a reviewed plan said, and only what has not changed.

The registry is looked at again first, with the plan's own options, as a dry run. A planned
deletion goes ahead only when that fresh look still deletes the tag and the tag still points at
the planned digest; the delete itself then goes through the usual safe delete with that digest
expected (deletion.delete_tag), so a push between the look and the delete is caught too.
Everything else is reported with the reason: a tag pushed again, removed, now used by a new
branch or protected since the plan is skipped; a tag that appeared since is not touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from registry_cleanup.domain.durations import parse_duration
from registry_cleanup.domain.image_age import ImageReader
from registry_cleanup.domain.plan import Action, Decision
from registry_cleanup.engine.deletion import TagStore
from registry_cleanup.engine.executor import Executor, Work
from registry_cleanup.engine.outcome import Status, SweepEntry
from registry_cleanup.engine.plan_file import Plan, PlannedTag, check_plan, read_plan
from registry_cleanup.engine.progress import Progress
from registry_cleanup.engine.sizes import ManifestCache, ManifestSource, measure_sweep
from registry_cleanup.engine.sweep import Sweep, SweepResult
from registry_cleanup.gitlab import GitLabApi, Repository

CHANGED = "changed since the plan"


def apply_plan(
    api: GitLabApi,
    plan: Plan,
    progress: Progress,
    *,
    now: Callable[[], datetime],
    trust_branch_list: bool = False,
    store_for: Callable[[Repository], TagStore],
    concurrency: int | None = None,
    images: ImageReader | None = None,
    sizes: ManifestSource | None = None,
) -> SweepResult:
    options = replace(
        plan.options,
        delete=False,
        record_digests=True,
        trust_branch_list=trust_branch_list or plan.options.trust_branch_list,
        concurrency=concurrency or plan.options.concurrency,
    )
    sweep = Sweep(api, options, progress, now=now, store_for=store_for, images=images)
    fresh = sweep.run()  # a dry run: it deletes nothing
    result = SweepResult(
        project=fresh.project,
        dry_run=False,
        branches=fresh.branches,
        default_branch=fresh.default_branch,
        guard=fresh.guard,
        notes=list(fresh.notes),
        repositories=fresh.repositories,
    )
    work = _compare(fresh, plan, result)

    if result.guard is not None and not options.trust_branch_list:
        result.refused = True
        result.entries += [
            SweepEntry(
                item.repository.location,
                item.decision.tag,
                Status.skipped,
                item.decision.reason,
                item.decision.digest,
                qualifier="refused by the guard",
            )
            for item in work
        ]
    else:
        protection = options.protection(result.default_branch)
        executor = Executor(sweep.store_for, fresh.listing, progress, options.concurrency)
        for done in executor.delete_all(work, protection):
            if done.status in (Status.skipped, Status.absent):
                done = replace(done, reason=f"{CHANGED}: {done.reason}")
            result.entries.append(done)
    result.entries.sort(key=lambda e: (e.repository, e.tag))
    if sizes is not None:
        result.sizes = measure_sweep(result, api, ManifestCache(sizes, options.concurrency))
    return result


def _compare(fresh: SweepResult, plan: Plan, result: SweepResult) -> list[Work]:
    """The plan against the fresh look: every tag's entry into ``result`` but the deletions
    that still hold (planned, still planned, at the planned digest), which are returned."""
    planned = {(tag.repository, tag.tag): tag for tag in plan.tags}
    locations = {repository.location: repository for repository in fresh.repositories}
    work: list[Work] = []
    for entry in fresh.entries:
        was = planned.pop((entry.repository, entry.tag), None)
        if was is None:
            why = "appeared since the plan; not touched"
            result.entries.append(entry.restated(Status.kept, why))
        elif was.status != Status.would_delete:
            result.entries.append(entry.restated(Status.kept, f"planned: {was.reason}"))
        elif entry.status != Status.would_delete:
            why = f"{CHANGED}: now kept ({entry.shown_reason})"
            result.entries.append(entry.restated(Status.skipped, why))
        elif was.digest is None or entry.digest != was.digest:
            why = (
                f"{CHANGED}: the tag now points at {entry.digest}, not the planned {was.digest}"
                if was.digest is not None
                else "the plan recorded no digest for this tag, so it cannot be checked"
            )
            result.entries.append(entry.restated(Status.skipped, why))
        else:
            # The fresh look's reason: the plan's, as the plan file shows it, carried the dry
            # run's words, and the fresh look deletes the tag for the same rule.
            work.append(Work(locations[entry.repository], _decision(was, entry.reason)))
    for gone in planned.values():
        if gone.status == Status.would_delete:
            result.entries.append(_gone(gone))

    return work


def _decision(planned: PlannedTag, reason: str) -> Decision:
    return Decision(
        tag=planned.tag,
        action=Action.delete,
        reason=reason,
        digest=planned.digest,
        created_at=planned.created_at,
    )


def _gone(planned: PlannedTag) -> SweepEntry:
    return SweepEntry(
        repository=planned.repository,
        tag=planned.tag,
        status=Status.absent,
        reason=f"{CHANGED}: the tag (or its repository) is gone; nothing to delete",
        digest=planned.digest,
        created_at=planned.created_at.isoformat() if planned.created_at else None,
    )


def apply_plan_file(
    api: GitLabApi,
    plan_path: Path,
    progress: Progress,
    *,
    instance: str,
    max_age: str,
    trust_branch_list: bool,
    concurrency: int | None,
    store_for: Callable[[Repository], TagStore],
    images: ImageReader | None = None,
    sizes: ManifestSource | None = None,
) -> tuple[SweepResult, Plan]:
    """``sweep --apply``: check the plan against this instance, project and time, then apply.

    The checks make no request: a plan for another instance or project, or too old, is refused
    before GitLab is asked anything."""
    limit = parse_duration(max_age, option="--max-plan-age")
    plan = read_plan(plan_path)
    check_plan(
        plan,
        instance=instance,
        project=api.project_ref,
        now=datetime.now(UTC),
        max_age=limit,
    )

    def now() -> datetime:
        return datetime.now(UTC)

    result = apply_plan(
        api,
        plan,
        progress,
        now=now,
        trust_branch_list=trust_branch_list,
        concurrency=concurrency,
        store_for=store_for,
        images=images,
        sizes=sizes,
    )
    return result, plan
