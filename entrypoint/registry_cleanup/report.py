"""Outcomes and how they are shown: human lines and --json documents."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    deleted = "deleted"
    absent = "absent"
    skipped = "skipped"
    would_delete = "would-delete"
    failed = "failed"

    @property
    def is_failure(self) -> bool:
        return self is Status.failed


@dataclass(frozen=True)
class Outcome:
    """What happened to one tag, and why."""

    ref: str
    tag: str
    digest: str | None
    status: Status
    reason: str

    def as_json(self) -> str:
        document = asdict(self)
        document["status"] = self.status.value
        return json.dumps(document, sort_keys=False)

    def as_line(self) -> str:
        digest = f" ({self.digest})" if self.digest else ""
        return f"{self.status.value}: {self.ref}{digest}: {self.reason}"
