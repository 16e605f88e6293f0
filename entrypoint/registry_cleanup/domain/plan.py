"""Pure planning: (tags, live refs, rules) -> one decision per tag, with the reason.

Nothing here touches the network. The sweep lists tags, branches and git tags, calls ``plan``
and acts on the decisions; tests call ``plan`` directly with any input they like.

A tag is deleted only when every rule lets it go, checked in this order:
protection (``latest``, the default branch's tag, release versions, --protect patterns),
GitLab's protected container tag rules (matched anywhere in the tag, as GitLab does), a live
branch or git tag whose slug is the tag (refs that share a slug all keep it; a tag pipeline
pushes ``$CI_COMMIT_REF_SLUG`` of the git tag), --include / --exclude, then retention among the
orphaned tags: --keep-n newest, --older-than, and the --min-age grace period for tags that just
appeared. Retention only ever keeps more; it never deletes a tag a live ref still uses.

Signature, attestation and SBOM tags (``sha256-<hex>[.sig|.att|.sbom|...]``, see
refs.attached_subject) follow their subject, the manifest with that digest: they are kept while
any tag on that digest is kept, deleted together with its last tags (``Decision.after`` names
them, so the sweep deletes them first and keeps the signature if one of them fails), and kept
and reported when no tag of the repository has that digest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from registry_cleanup.domain.refs import attached_subject, slugify
from registry_cleanup.domain.safety import ProtectionRules, TagPattern, gitlab_protects, verdict

ORPHAN_REASON = "no branch or git tag has this slug"
AGE_UNKNOWN = "creation time unknown, and an age rule applies"
# A tag is deleted only at a digest read before the ref lists that orphaned it (engine/sweep.py).
DIGEST_UNKNOWN = (
    "no branch or git tag has this slug, but GitLab gave no digest for it before the ref lists "
    "were read; kept until a run that knows it"
)


@dataclass(frozen=True)
class TagInfo:
    name: str
    created_at: datetime | None = None
    digest: str | None = None


class Action(StrEnum):
    delete = "delete"
    keep = "keep"


class Why(StrEnum):
    """What kind of reason a decision has: code reads this, people read the reason's words."""

    protected = "protected"  # our rules: the default branch's tag, --protect, release tags
    gitlab_protected = "gitlab-protected"  # a GitLab protected container tag rule
    live_ref = "live-ref"  # a branch or git tag has the slug
    not_included = "not-included"
    excluded = "excluded"
    orphan = "orphan"  # no ref has the slug: deleted (pending the age rules)
    subject = "subject"  # a signature or attestation, deleted or kept with its subject
    digest_unknown = "digest-unknown"
    age_unknown = "age-unknown"
    keep_n = "keep-n"
    too_new = "too-new"  # --older-than, --min-age


@dataclass(frozen=True)
class Decision:
    tag: str
    action: Action
    reason: str
    digest: str | None = None
    created_at: datetime | None = None
    # For a signature/attestation tag deleted with its subject: the subject's tags, which must
    # be deleted first (if one of them fails, this tag stays).
    after: tuple[str, ...] = ()
    # A kept tag the report should draw attention to (a signature of an unknown image).
    notable: bool = False
    why: Why = Why.orphan


@dataclass(frozen=True)
class SweepRules:
    """What the sweep may delete, besides the tags of live branches (never)."""

    protection: ProtectionRules = field(default_factory=ProtectionRules)
    include: tuple[TagPattern, ...] = ()
    exclude: tuple[TagPattern, ...] = ()
    # GitLab's protected container tag rules that restrict this caller, matched GitLab's way:
    # anywhere in the tag (safety.gitlab_protects).
    gitlab_protected: tuple[TagPattern, ...] = ()
    keep_n: int | None = None
    older_than: timedelta | None = None
    min_age: timedelta = timedelta(0)
    # Deleting (or planning to): a tag goes only at the digest it was planned with, so one
    # whose digest is unknown is kept (DIGEST_UNKNOWN).
    digests_required: bool = False

    @property
    def needs_age(self) -> bool:
        """True when a decision depends on a tag's creation time."""
        return bool(self.keep_n) or self.older_than is not None or self.min_age > timedelta(0)


def live_slugs(branches: Iterable[str], git_tags: Iterable[str] = ()) -> dict[str, list[str]]:
    """Each non-empty slug of a live ref, with every ref that has it, described
    ("branch 'x'", "git tag 'y'")."""
    slugs: dict[str, list[str]] = {}
    for kind, names in (("branch", branches), ("git tag", git_tags)):
        for name in names:
            slug = slugify(name)
            if slug:
                slugs.setdefault(slug, []).append(f"{kind} {name!r}")
    return slugs


def _owners_reason(owners: list[str]) -> str:
    if len(owners) == 1:
        return f"{owners[0]} still exists"
    described = sorted(owners)
    if all(owner.startswith("branch ") for owner in described):
        names = ", ".join(owner.removeprefix("branch ") for owner in described)
        return f"live branches {names} share this slug"
    return f"live refs {', '.join(described)} share this slug"


Verdict = tuple[Action, Why, str]


def _name_verdict(tag: str, slugs: dict[str, list[str]], rules: SweepRules) -> Verdict:
    """The decision from names alone: keep with a reason, or orphaned (delete, pending ages)."""
    protection = verdict(tag, rules.protection)
    if not protection.allowed:
        return Action.keep, Why.protected, protection.reason
    for pattern in rules.gitlab_protected:
        if gitlab_protects(tag, pattern):
            why = f"protected by GitLab tag rule {pattern.pattern!r}"
            return Action.keep, Why.gitlab_protected, why
    owners = slugs.get(tag)
    if owners:
        return Action.keep, Why.live_ref, _owners_reason(owners)
    if attached_subject(tag) is not None:
        # Decided in plan(), with the subject.
        return Action.delete, Why.subject, "follows its subject"
    if rules.include and not any(p.fullmatch(tag) for p in rules.include):
        return Action.keep, Why.not_included, "not matched by --include"
    for pattern in rules.exclude:
        if pattern.fullmatch(tag):
            return Action.keep, Why.excluded, f"matched by --exclude {pattern.pattern!r}"
    return Action.delete, Why.orphan, ORPHAN_REASON


def orphans(
    tags: Iterable[str], branches: Iterable[str], rules: SweepRules, git_tags: Iterable[str] = ()
) -> list[str]:
    """Tags the name rules would delete: the ones whose creation time may matter.

    Signature and attestation tags are not among them: they follow their subject."""
    slugs = live_slugs(branches, git_tags)
    return [
        t
        for t in tags
        if attached_subject(t) is None and _name_verdict(t, slugs, rules)[0] is Action.delete
    ]


def plan(
    tags: Iterable[TagInfo],
    branches: Iterable[str],
    rules: SweepRules,
    now: datetime,
    git_tags: Iterable[str] = (),
) -> list[Decision]:
    """One decision per distinct tag, sorted by tag name."""
    slugs = live_slugs(branches, git_tags)
    unique = {tag.name: tag for tag in tags}
    decisions: dict[str, Decision] = {}
    orphaned: list[TagInfo] = []
    attached: list[TagInfo] = []
    for name, tag in unique.items():
        action, why, reason = _name_verdict(name, slugs, rules)
        if action is Action.keep:
            decisions[name] = _decision(tag, action, why, reason)
        elif attached_subject(name) is not None:
            attached.append(tag)
        else:
            orphaned.append(tag)

    # Retention among orphans: newest first; an unknown creation time counts as newest.
    orphaned.sort(key=lambda t: (-_timestamp(t), t.name))
    for index, tag in enumerate(orphaned):
        decisions[tag.name] = _decision(tag, *_retention(tag, index, rules, now))
    _follow_subjects(attached, decisions, rules)
    return [decisions[name] for name in sorted(decisions)]


def _follow_subjects(
    attached: list[TagInfo], decisions: dict[str, Decision], rules: SweepRules
) -> None:
    """Decide signature/attestation tags after every tag on their subject's digest (the
    subject may itself be such a tag: a signature of an attestation)."""
    on_digest: dict[str, list[Decision]] = {}
    for decision in decisions.values():
        if decision.digest is not None:
            on_digest.setdefault(decision.digest, []).append(decision)
    # A kept tag whose digest we were not given may be on any subject.
    unknown_kept = sorted(
        d.tag for d in decisions.values() if d.digest is None and d.action is Action.keep
    )
    pending = {tag.name: tag for tag in attached}
    while pending:
        undecided = {tag.digest for tag in pending.values()}
        ready = [t for t in pending.values() if attached_subject(t.name) not in undecided]
        if not ready:  # a cycle; content digests cannot make one, but never delete on it
            for tag in pending.values():
                decisions[tag.name] = _decision(
                    tag, Action.keep, Why.subject, "its subject is undecided"
                )
            return
        for tag in ready:
            subject = attached_subject(tag.name) or ""
            decision = _follow(tag, subject, on_digest.get(subject, []), unknown_kept, rules)
            decisions[tag.name] = decision
            if tag.digest is not None:
                on_digest.setdefault(tag.digest, []).append(decision)
            del pending[tag.name]


def _follow(
    tag: TagInfo,
    subject: str,
    on_subject: list[Decision],
    unknown_kept: list[str],
    rules: SweepRules,
) -> Decision:
    kept = sorted(d.tag for d in on_subject if d.action is Action.keep)
    if kept:
        why = f"belongs to {subject}, which tag {kept[0]!r} keeps"
        return _decision(tag, Action.keep, Why.subject, why)
    if unknown_kept:
        why = f"belongs to {subject}; kept tags of unknown digest may be on it"
        return _decision(tag, Action.keep, Why.subject, why)
    if not on_subject:
        return _decision(
            tag,
            Action.keep,
            Why.subject,
            f"belongs to {subject}, which no tag of this repository points at (a platform "
            "image of a multi-platform index, or its tags were deleted earlier): kept",
            notable=True,
        )
    for pattern in rules.exclude:
        if pattern.fullmatch(tag.name):
            why = f"matched by --exclude {pattern.pattern!r}"
            return _decision(tag, Action.keep, Why.excluded, why)
    if rules.digests_required and tag.digest is None:
        return _decision(tag, Action.keep, Why.digest_unknown, DIGEST_UNKNOWN)
    last = tuple(sorted(d.tag for d in on_subject))
    names = ", ".join(repr(n) for n in last)
    return _decision(
        tag,
        Action.delete,
        Why.subject,
        f"belongs to {subject}, whose last tags ({names}) go in this run",
        after=last,
    )


def _retention(tag: TagInfo, index: int, rules: SweepRules, now: datetime) -> Verdict:
    if rules.digests_required and tag.digest is None:
        return Action.keep, Why.digest_unknown, DIGEST_UNKNOWN
    if rules.needs_age and tag.created_at is None:
        return Action.keep, Why.age_unknown, AGE_UNKNOWN
    if rules.keep_n and index < rules.keep_n:
        return Action.keep, Why.keep_n, f"one of the {rules.keep_n} newest orphaned tags (--keep-n)"
    age = now - tag.created_at if tag.created_at is not None else None
    if rules.older_than is not None and age is not None and age < rules.older_than:
        return Action.keep, Why.too_new, f"newer than --older-than {_human(rules.older_than)}"
    if age is not None and age < rules.min_age:
        why = f"appeared less than {_human(rules.min_age)} ago (--min-age)"
        return Action.keep, Why.too_new, why
    return Action.delete, Why.orphan, ORPHAN_REASON


def _timestamp(tag: TagInfo) -> float:
    return tag.created_at.timestamp() if tag.created_at is not None else math.inf


def _decision(
    tag: TagInfo,
    action: Action,
    why: Why,
    reason: str,
    *,
    after: tuple[str, ...] = (),
    notable: bool = False,
) -> Decision:
    return Decision(
        tag=tag.name,
        action=action,
        reason=reason,
        digest=tag.digest,
        created_at=tag.created_at,
        after=after,
        notable=notable,
        why=why,
    )


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
