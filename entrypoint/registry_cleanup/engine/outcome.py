"""What happened to one tag: the result type of the one safe delete (engine/deletion.py), which
the sweep's entries and every report use too."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from registry_cleanup.domain.plan import Why
from registry_cleanup.domain.refs import ImageRef

if TYPE_CHECKING:
    from registry_cleanup.domain.plan import Decision
    from registry_cleanup.gitlab import Repository


class Status(StrEnum):
    """The word a report gives for a tag; its value is what JSON and tables print."""

    kept = "kept"  # the plan keeps it (a sweep's entries only)
    deleted = "deleted"
    absent = "absent"
    skipped = "skipped"
    would_delete = "would-delete"
    failed = "failed"

    @property
    def is_failure(self) -> bool:
        return self is Status.failed


class Result(StrEnum):
    """What one safe delete came to. Reports show its ``status``; the sweep tells more apart
    (a tag GitLab's own rule protects is kept there, where ``delete`` reports a failure)."""

    deleted = "deleted"
    absent = "absent"
    kept = "kept"  # our protection rules, or a pipeline of the default branch
    changed = "changed"  # the tag points at another digest than the one expected
    refused_protected = "refused-protected"  # GitLab refused: a protected container tag rule
    would_delete = "would-delete"
    failed = "failed"

    @property
    def status(self) -> Status:
        return _STATUS[self]


_STATUS = {
    Result.deleted: Status.deleted,
    Result.absent: Status.absent,
    Result.kept: Status.skipped,
    Result.changed: Status.skipped,
    Result.refused_protected: Status.failed,
    Result.would_delete: Status.would_delete,
    Result.failed: Status.failed,
}


@dataclass(frozen=True)
class Outcome:
    """What happened to one tag, and why."""

    ref: str
    tag: str
    digest: str | None
    result: Result
    reason: str

    @property
    def status(self) -> Status:
        return self.result.status


def failed_outcome(target: ImageRef, reason: str) -> Outcome:
    """A delete that could not even look at the tag (GitLab or the registry unreachable,
    refused the credentials): nothing changed, and the reason says why."""
    return Outcome(
        ref=str(target), tag=target.tag, digest=None, result=Result.failed, reason=reason
    )


@dataclass(frozen=True)
class SweepEntry:
    """One tag of a sweep: what became of it, and why.

    ``reason`` is the plan's or the delete's; ``qualifier`` is what the run adds to it (a dry
    run, the guard's refusal), joined to it only where it is shown (``shown_reason``)."""

    repository: str
    tag: str
    status: Status
    reason: str
    digest: str | None = None
    created_at: str | None = None
    qualifier: str | None = None
    # The plan's kind of reason, where the reason is the plan's (not the delete's).
    why: Why | None = None

    @property
    def shown_reason(self) -> str:
        return f"{self.reason}; {self.qualifier}" if self.qualifier else self.reason

    def restated(self, status: Status, reason: str) -> SweepEntry:
        """The same tag with another status and reason (and nothing the run had added)."""
        return replace(self, status=status, reason=reason, qualifier=None)


def entry_for(
    repo: Repository, decision: Decision, status: Status, reason: str, why: Why | None = None
) -> SweepEntry:
    """A sweep's entry for a planned tag: what became of it, and why."""
    created = decision.created_at.isoformat() if decision.created_at else None
    return SweepEntry(
        repository=repo.location,
        tag=decision.tag,
        status=status,
        reason=reason,
        digest=decision.digest,
        created_at=created,
        why=why,
    )
