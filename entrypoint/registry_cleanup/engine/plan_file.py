"""A sweep's plan as a file: written by ``sweep --plan-out``, checked and read by ``--apply``.

The plan is the sweep report of a dry run plus what makes it checkable later: the GitLab
instance and project it was made for, the container repositories, when it was made, by which
version, and with which options. ``--apply`` refuses (exit 2, nothing deleted) a plan of another
instance or project, or one older than ``--max-plan-age``: the person who reviewed it reviewed
that registry at that time, not this one now.

Pure: building, parsing and checking take and return values; engine/apply.py acts on them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from registry_cleanup.engine.options import SweepOptions
from registry_cleanup.errors import InputError
from registry_cleanup.gitlab import Repository, base_url

PLAN_KIND = "plan"
PLAN_VERSION = 1
# A plan dated ahead of our clock by more than this was not made by a sweep we can trust.
CLOCK_SKEW = timedelta(minutes=5)


def instance_of(api_url: str) -> str:
    """The instance a plan is bound to: CI_API_V4_URL without /api/v4, host in lowercase."""
    url = base_url(api_url).rstrip("/")
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def options_document(options: SweepOptions) -> dict[str, Any]:
    """The options as JSON: durations in seconds, tuples as lists."""
    document: dict[str, Any] = {}
    for item in fields(options):
        value = getattr(options, item.name)
        if isinstance(value, timedelta):
            value = int(value.total_seconds())
        elif isinstance(value, tuple):
            value = list(value)
        document[item.name] = value
    return document


def plan_document(
    report: Mapping[str, Any],
    *,
    instance: str,
    project: str,
    repositories: list[Repository],
    options: SweepOptions,
    created_at: datetime,
) -> dict[str, Any]:
    """The dry run's report (``output.sweep_table.as_document``) and what binds it to its
    origin. A sized report's figures per repository stay with each repository."""
    sized = {str(r.get("location")): r for r in report.get("repositories", [])}
    return {
        **report,
        "kind": PLAN_KIND,
        "plan_version": PLAN_VERSION,
        "created_at": created_at.isoformat(),
        "instance": instance,
        "project": project,
        "repositories": [
            {
                **sized.get(r.location, {}),
                "id": r.id,
                "path": r.path,
                "location": r.location,
                "name": r.name,
            }
            for r in repositories
        ],
        "options": options_document(options),
    }


def options_from_document(document: Mapping[str, Any]) -> SweepOptions:
    """The options a plan was made with; a field the plan lacks keeps its default."""
    values: dict[str, Any] = {}
    defaults = SweepOptions()
    for item in fields(SweepOptions):
        if item.name not in document:
            continue
        value, default = document[item.name], getattr(defaults, item.name)
        if isinstance(default, timedelta) or item.name == "older_than":
            value = None if value is None else timedelta(seconds=float(value))
        elif isinstance(default, tuple):
            value = tuple(str(v) for v in value)
        values[item.name] = value
    return SweepOptions(**values)


@dataclass(frozen=True)
class PlannedTag:
    repository: str  # the repository's location, as in sweep reports
    tag: str
    status: str  # "would-delete" or "kept"
    reason: str
    digest: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class Plan:
    source: str
    instance: str
    project: str
    created_at: datetime
    tool: str
    default_branch: str | None
    guard: str | None
    repositories: tuple[Repository, ...]
    tags: tuple[PlannedTag, ...]
    options: SweepOptions

    @property
    def deletions(self) -> tuple[PlannedTag, ...]:
        return tuple(tag for tag in self.tags if tag.status == "would-delete")


def read_plan(path: Path) -> Plan:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a text file"
        raise InputError(f"cannot read plan {path}: {reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"plan {path} is not JSON (line {error.lineno}: {error.msg}); "
            "pass a file written by 'sweep --plan-out'"
        ) from None
    return parse_plan(document, source=str(path))


def parse_plan(document: object, *, source: str) -> Plan:
    if not isinstance(document, Mapping) or document.get("kind") != PLAN_KIND:
        raise InputError(f"{source} is not a plan; pass a file written by 'sweep --plan-out'")
    version = document.get("plan_version")
    if version != PLAN_VERSION:
        raise InputError(
            f"plan {source} has version {version!r}; this registry-cleanup reads version "
            f"{PLAN_VERSION}: make a new plan with this version"
        )
    try:
        options = document["options"]
        return Plan(
            source=source,
            instance=str(document["instance"]),
            project=str(document["project"]),
            created_at=_time(document["created_at"]),
            tool=str(document.get("tool", "")),
            default_branch=document.get("default_branch"),
            guard=document.get("guard"),
            repositories=tuple(
                Repository(
                    id=int(r["id"]),
                    path=str(r["path"]),
                    location=str(r["location"]),
                    name=str(r.get("name") or ""),
                )
                for r in document["repositories"]
            ),
            tags=tuple(
                PlannedTag(
                    repository=str(t["repository"]),
                    tag=str(t["tag"]),
                    status=str(t["status"]),
                    reason=str(t["reason"]),
                    digest=t.get("digest"),
                    created_at=_time(t["created_at"]) if t.get("created_at") else None,
                )
                for t in document["tags"]
            ),
            options=options_from_document(options),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(
            f"plan {source} is incomplete or damaged ({type(error).__name__}: {error}); "
            "make a new plan with 'sweep --plan-out'"
        ) from None


def _time(text: object) -> datetime:
    if not isinstance(text, str):
        raise TypeError(f"expected a time, got {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return moment


def check_plan(
    plan: Plan, *, instance: str, project: str, now: datetime, max_age: timedelta
) -> None:
    """Refuse (InputError, exit 2) a plan made elsewhere or too long ago."""
    if plan.instance != instance:
        raise InputError(
            f"plan {plan.source} was made for GitLab {plan.instance}, not {instance}; "
            "refusing to apply it here (nothing was deleted)"
        )
    if plan.project != project:
        raise InputError(
            f"plan {plan.source} was made for project {plan.project}, not {project}; "
            f"refusing to apply it (pass --project {plan.project} if that is the same project; "
            "nothing was deleted)"
        )
    age = now - plan.created_at
    if age > max_age:
        raise InputError(
            f"plan {plan.source} was made {_human(age)} ago ({plan.created_at.isoformat()}), "
            f"more than --max-plan-age {_human(max_age)}; make a new plan (nothing was deleted)"
        )
    if -age > CLOCK_SKEW:
        raise InputError(
            f"plan {plan.source} is dated in the future ({plan.created_at.isoformat()}); "
            "refusing to apply it (nothing was deleted)"
        )


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d".replace(".0d", "d")
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"
