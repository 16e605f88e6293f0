"""Undo deletions: point each deleted tag back at the digest a report recorded.

A deleted tag's manifest stays in the registry until garbage collection removes it (about a
day on GitLab.com, until an administrator runs it on a self-managed instance), so for a while a
delete can be undone by pushing that manifest to the tag again. The report is the record: a
sweep report (``sweep --report``, also of ``--apply``), a ``delete --report`` file, or the one
object ``delete --json`` prints.

Restoring never overwrites: a tag that exists again, with whatever digest, is left alone.
Running the same restore twice is safe; the second run finds every tag already restored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from registry_cleanup.domain.refs import ImageRef, parse_image_ref, with_tag
from registry_cleanup.engine.deletion import DIGEST_PATTERN
from registry_cleanup.engine.outcome import Status
from registry_cleanup.errors import InputError

REPORT_HINT = "pass a sweep report, a 'delete --report' file or the output of 'delete --json'"


class RestoreStatus(StrEnum):
    restored = "restored"
    would_restore = "would-restore"
    already_restored = "already-restored"
    left_alone = "left-alone"  # the tag exists again, with another digest
    garbage_collected = "garbage-collected"
    failed = "failed"

    @property
    def is_failure(self) -> bool:
        """The recorded image is not at its tag, and this run could not put it there."""
        return self in (
            RestoreStatus.left_alone,
            RestoreStatus.garbage_collected,
            RestoreStatus.failed,
        )


@dataclass(frozen=True)
class Deleted:
    """One tag a report says was deleted, with the digest it pointed at."""

    ref: ImageRef
    digest: str | None  # None: an older report that did not record it


@dataclass(frozen=True)
class RestoreOutcome:
    ref: str
    tag: str
    digest: str | None
    status: RestoreStatus
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        document = asdict(self)
        document["status"] = self.status.value
        return document

    def as_line(self) -> str:
        digest = f" ({self.digest})" if self.digest else ""
        return f"{self.status.value}: {self.ref}{digest}: {self.reason}"


class RestoreStore(Protocol):
    """What restoring needs from the registry (``RegctlSession`` provides it)."""

    def digest(self, ref: ImageRef | str) -> str | None: ...
    def manifest_exists(self, pinned: str) -> bool: ...
    def copy(self, source: str, target: ImageRef) -> None: ...


# -- reading the report ---------------------------------------------------------------------


def read_report(path: Path) -> list[Deleted]:
    """Every deleted tag the report records; InputError (exit 2) for anything unreadable."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a text file"
        raise InputError(f"cannot read report {path}: {reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"report {path} is not JSON (line {error.lineno}: {error.msg}); {REPORT_HINT}"
        ) from None
    return parse_report(document, source=str(path))


def parse_report(document: object, *, source: str) -> list[Deleted]:
    if isinstance(document, Mapping) and isinstance(document.get("tags"), list):
        entries: Iterable[object] = document["tags"]
        return [_from_entry(entry, source, index) for index, entry in _deleted(entries)]
    if isinstance(document, Mapping) and "ref" in document and "status" in document:
        if document["status"] != Status.deleted.value:
            return []
        ref = _field(document, "ref", source, 0)
        return [
            Deleted(
                parse_image_ref(ref, what=f"report {source}: ref"), _digest(document, source, 0)
            )
        ]
    raise InputError(f"report {source} holds no deleted tags we can read; {REPORT_HINT}")


def _deleted(entries: Iterable[object]) -> Iterable[tuple[int, Mapping[str, Any]]]:
    for index, entry in enumerate(entries):
        if isinstance(entry, Mapping) and entry.get("status") == Status.deleted.value:
            yield index, entry


def _from_entry(entry: Mapping[str, Any], source: str, index: int) -> Deleted:
    repository = _field(entry, "repository", source, index)
    tag = _field(entry, "tag", source, index)
    what = f"report {source}: tags[{index}]"
    return Deleted(with_tag(repository, tag, what=what), _digest(entry, source, index))


def _field(entry: Mapping[str, Any], name: str, source: str, index: int) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(f"report {source}: entry {index} has no {name!r}; {REPORT_HINT}")
    return value


def _digest(entry: Mapping[str, Any], source: str, index: int) -> str | None:
    digest = entry.get("digest")
    if digest is None:
        return None  # reported per tag: the other entries can still be restored
    if not isinstance(digest, str) or DIGEST_PATTERN.fullmatch(digest) is None:
        raise InputError(
            f"report {source}: entry {index} has an invalid digest {digest!r}; expected "
            "sha256: and 64 hex digits"
        )
    return digest


def select(deleted: Sequence[Deleted], tags: Sequence[str]) -> list[Deleted]:
    """The entries for the ``--tag`` names (all when none); a name not in the report is an error."""
    if not tags:
        return list(deleted)
    recorded = {item.ref.tag for item in deleted}
    unknown = [tag for tag in tags if tag not in recorded]
    if unknown:
        known = ", ".join(sorted(recorded)) or "none"
        raise InputError(
            f"--tag {unknown[0]}: the report records no deleted tag of that name (deleted: {known})"
        )
    return [item for item in deleted if item.ref.tag in tags]


# -- restoring --------------------------------------------------------------------------------


def restore_one(item: Deleted, store: RestoreStore, *, dry_run: bool) -> RestoreOutcome:
    """Point one tag back at its recorded digest, unless it exists again or the image is gone.

    Registry errors (regctl's) are raised to the caller, which reports them per tag.
    """
    ref, digest = item.ref, item.digest

    def outcome(status: RestoreStatus, reason: str) -> RestoreOutcome:
        return RestoreOutcome(str(ref), ref.tag, digest, status, reason)

    if digest is None:
        return outcome(
            RestoreStatus.failed,
            "the report records no digest for this tag, so there is nothing to point it back at",
        )
    current = store.digest(ref)
    if current == digest:
        return outcome(RestoreStatus.already_restored, "the tag already points at this digest")
    if current is not None:
        return outcome(
            RestoreStatus.left_alone,
            f"the tag exists again and points at {current}; left alone (restoring would "
            "overwrite a newer push)",
        )
    if not store.manifest_exists(ref.at_digest(digest)):
        return outcome(
            RestoreStatus.garbage_collected,
            "the registry no longer holds this image; rebuild and push it",
        )
    if dry_run:
        return outcome(
            RestoreStatus.would_restore, "dry run: the image is still there; nothing was changed"
        )
    store.copy(ref.at_digest(digest), ref)
    after = store.digest(ref)
    if after != digest:
        return outcome(
            RestoreStatus.failed, f"the tag was pushed but now points at {after}, not {digest}"
        )
    return outcome(RestoreStatus.restored, "the tag points at its recorded digest again")


def summary(outcomes: Sequence[RestoreOutcome]) -> dict[str, int]:
    counts = Counter(outcome.status for outcome in outcomes)
    return {status.value: counts.get(status, 0) for status in RestoreStatus}
