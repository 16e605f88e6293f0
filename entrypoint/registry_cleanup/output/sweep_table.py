"""How a sweep is shown: a table, one --json document, a report file for CI artifacts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from registry_cleanup import __version__
from registry_cleanup.engine.outcome import SweepEntry
from registry_cleanup.engine.sizes import Sizes
from registry_cleanup.engine.sweep import SweepResult
from registry_cleanup.output.figures import (
    UPPER_BOUND,
    repository_fields,
    summary_fields,
)
from registry_cleanup.output.report import REPORT_VERSION, now_iso, print_tag_table, write_document


def as_document(result: SweepResult) -> dict[str, Any]:
    document = {
        "version": REPORT_VERSION,
        "kind": "sweep",
        "tool": f"registry-cleanup {__version__}",
        "generated_at": now_iso(),
        "project": result.project,
        "project_path": result.project_path,
        "dry_run": result.dry_run,
        "default_branch": result.default_branch,
        "branches": result.branches,
        "guard": result.guard,
        "refusal": result.refusal,
        "refused": result.refused,
        "notes": list(result.notes),
        "summary": result.summary(),
        "tags": [entry_document(entry) for entry in result.entries],
    }
    if result.sizes is not None:
        _add_sizes(document, result.sizes)
    return document


def _add_sizes(document: dict[str, Any], sizes: Sizes) -> None:
    """The storage figures (sweep --sizes): in the summary, per repository, per tag."""
    document["notes"].append(UPPER_BOUND)
    document["summary"] |= summary_fields(sizes)
    document["repositories"] = repository_fields(sizes)
    for tag in document["tags"]:
        tag["size_bytes"] = sizes.tag_bytes(tag["repository"], tag["tag"])
        if tag.get("created_at") is None:
            tag["created_at"] = sizes.created_at(tag["repository"], tag["tag"])


def applied_document(result: SweepResult, plan_file: Path, planned_at: datetime) -> dict[str, Any]:
    """The report of ``sweep --apply``: the sweep's, and the plan it carried out."""
    return {
        **as_document(result),
        "kind": "apply",
        "plan": {"file": str(plan_file), "created_at": planned_at.isoformat()},
    }


def entry_document(entry: SweepEntry) -> dict[str, Any]:
    """One tag of a report: its reason as shown, with what the run added to it."""
    document = asdict(entry)
    document["reason"] = entry.shown_reason
    del document["qualifier"], document["why"]
    return document


def summary_line(result: SweepResult) -> str:
    mode = "dry run" if result.dry_run else "deleting"
    counts = ", ".join(f"{key} {value}" for key, value in result.summary().items() if value)
    return f"sweep of project {result.project} ({mode}): {counts or 'no tags'}"


def print_table(result: SweepResult, stream: TextIO) -> None:
    """Every tag with what happened and why (report.print_tag_table)."""
    rows = [(e.repository, e.tag, e.status, e.shown_reason) for e in result.entries]
    print_tag_table(stream, f"registry-cleanup sweep: {result.project}", rows)


def write_failure_report(path: Path, project: str, dry_run: bool, error: str) -> None:
    """The report of a sweep that stopped before it had a plan (the project could not be read,
    GitLab failed): nothing was deleted, and the artifact says why instead of being absent."""
    result = SweepResult(project=project, dry_run=dry_run)
    document = {**as_document(result), "failed": True, "error": error}
    write_document(path, document)
