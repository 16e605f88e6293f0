"""Pure planning: (tags, branches, rules) -> one decision per tag, with the reason.

Nothing here touches the network. The sweep lists tags and branches, calls ``plan`` and acts on
the decisions; tests call ``plan`` directly with any input they like.

A tag is deleted only when every rule lets it go, checked in this order:
protection (``latest``, the default branch's tag, release versions, --protect patterns),
GitLab's protected container tag rules, a live branch whose slug is the tag (two branches that
share a slug both keep it), --include / --exclude, then retention among the orphaned tags:
--keep-n newest, --older-than, and the --min-age grace period for tags that just appeared.
Retention only ever keeps more; it never deletes a tag a branch still uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from registry_cleanup.refs import slugify
from registry_cleanup.safety import ProtectionRules, TagPattern, verdict

# Guard: a branch list this much smaller than the tags it orphans looks broken.
GUARD_RATIO = 10
GUARD_MINIMUM_ORPHANS = 10


@dataclass(frozen=True)
class TagInfo:
    name: str
    created_at: datetime | None = None
    digest: str | None = None


class Action(StrEnum):
    delete = "delete"
    keep = "keep"


@dataclass(frozen=True)
class Decision:
    tag: str
    action: Action
    reason: str
    digest: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class SweepRules:
    """What the sweep may delete, besides the tags of live branches (never)."""

    protection: ProtectionRules = field(default_factory=ProtectionRules)
    include: tuple[TagPattern, ...] = ()
    exclude: tuple[TagPattern, ...] = ()
    gitlab_protected: tuple[TagPattern, ...] = ()
    keep_n: int | None = None
    older_than: timedelta | None = None
    min_age: timedelta = timedelta(0)

    @property
    def needs_age(self) -> bool:
        """True when a decision depends on a tag's creation time."""
        return bool(self.keep_n) or self.older_than is not None or self.min_age > timedelta(0)


def live_slugs(branches: Iterable[str]) -> dict[str, list[str]]:
    """Each non-empty slug of a live branch, with every branch that has it."""
    slugs: dict[str, list[str]] = {}
    for branch in branches:
        slug = slugify(branch)
        if slug:
            slugs.setdefault(slug, []).append(branch)
    return slugs


def _name_verdict(tag: str, slugs: dict[str, list[str]], rules: SweepRules) -> tuple[Action, str]:
    """The decision from names alone: keep with a reason, or orphaned (delete, pending ages)."""
    protection = verdict(tag, rules.protection)
    if not protection.allowed:
        return Action.keep, protection.reason
    for pattern in rules.gitlab_protected:
        if pattern.fullmatch(tag):
            return Action.keep, f"protected by GitLab tag rule {pattern.pattern!r}"
    owners = slugs.get(tag)
    if owners:
        if len(owners) > 1:
            names = ", ".join(repr(b) for b in sorted(owners))
            return Action.keep, f"live branches {names} share this slug"
        return Action.keep, f"branch {owners[0]!r} still exists"
    if rules.include and not any(p.fullmatch(tag) for p in rules.include):
        return Action.keep, "not matched by --include"
    for pattern in rules.exclude:
        if pattern.fullmatch(tag):
            return Action.keep, f"matched by --exclude {pattern.pattern!r}"
    return Action.delete, "no branch has this slug"


def orphans(tags: Iterable[str], branches: Iterable[str], rules: SweepRules) -> list[str]:
    """Tags the name rules would delete: the ones whose creation time may matter."""
    slugs = live_slugs(branches)
    return [t for t in tags if _name_verdict(t, slugs, rules)[0] is Action.delete]


def plan(
    tags: Iterable[TagInfo], branches: Iterable[str], rules: SweepRules, now: datetime
) -> list[Decision]:
    """One decision per distinct tag, sorted by tag name."""
    slugs = live_slugs(branches)
    unique = {tag.name: tag for tag in tags}
    decisions: dict[str, Decision] = {}
    orphaned: list[TagInfo] = []
    for name, tag in unique.items():
        action, reason = _name_verdict(name, slugs, rules)
        if action is Action.delete:
            orphaned.append(tag)
        else:
            decisions[name] = _decision(tag, action, reason)

    # Retention among orphans: newest first; an unknown creation time counts as newest.
    orphaned.sort(key=lambda t: (-_timestamp(t), t.name))
    for index, tag in enumerate(orphaned):
        decisions[tag.name] = _decision(tag, *_retention(tag, index, rules, now))
    return [decisions[name] for name in sorted(decisions)]


def _retention(tag: TagInfo, index: int, rules: SweepRules, now: datetime) -> tuple[Action, str]:
    if rules.needs_age and tag.created_at is None:
        return Action.keep, "creation time unknown, and an age rule applies"
    if rules.keep_n and index < rules.keep_n:
        return Action.keep, f"one of the {rules.keep_n} newest orphaned tags (--keep-n)"
    age = now - tag.created_at if tag.created_at is not None else None
    if rules.older_than is not None and age is not None and age < rules.older_than:
        return Action.keep, f"newer than --older-than {_human(rules.older_than)}"
    if age is not None and age < rules.min_age:
        return Action.keep, f"appeared less than {_human(rules.min_age)} ago (--min-age)"
    return Action.delete, "no branch has this slug"


def _timestamp(tag: TagInfo) -> float:
    return tag.created_at.timestamp() if tag.created_at is not None else math.inf


def _decision(tag: TagInfo, action: Action, reason: str) -> Decision:
    return Decision(
        tag=tag.name,
        action=action,
        reason=reason,
        digest=tag.digest,
        created_at=tag.created_at,
    )


def broken_branch_list(
    orphan_count: int, branches: Sequence[str], default_branch: str | None
) -> str | None:
    """Why the branch list looks broken (so nothing should be deleted), or None."""
    if orphan_count == 0:
        return None  # nothing would be deleted, so nothing to guard
    if not branches:
        return "the branch list is empty"
    if default_branch and default_branch not in branches:
        return f"the default branch {default_branch!r} is not in the branch list"
    if orphan_count >= GUARD_MINIMUM_ORPHANS and orphan_count > GUARD_RATIO * len(branches):
        return (
            f"{orphan_count} tags have no branch but only {len(branches)} branches were listed "
            f"(more than {GUARD_RATIO} orphans per branch)"
        )
    return None


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
