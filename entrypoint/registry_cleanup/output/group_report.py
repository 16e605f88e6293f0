"""How a group sweep is shown: one --json document with a section per project and totals, a
table grouped by project, and the merge of per-project reports that the CI child pipeline's
last job makes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from registry_cleanup.engine.group_sweep import GroupSweepResult, ProjectOutcome, empty_summary
from registry_cleanup.errors import InputError
from registry_cleanup.output.figures import status_counts
from registry_cleanup.output.report import REPORT_VERSION, print_tag_table
from registry_cleanup.output.sweep_table import as_document as project_document

GROUP_REPORT_KIND = "group-sweep"


def project_section(outcome: ProjectOutcome) -> dict[str, Any]:
    """A project's section: its sweep report, plus whether it failed and why."""
    if outcome.result is not None:
        section = project_document(outcome.result)
    else:
        section = {
            "version": REPORT_VERSION,
            "project": outcome.project,
            "dry_run": None,
            "summary": empty_summary(),
            "tags": [],
        }
    section["project_id"] = outcome.project_id
    section["failed"] = outcome.failed
    section["error"] = outcome.why_failed
    return section


def group_document(
    group: str, dry_run: bool | None, sections: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    totals = empty_summary()
    for section in sections:
        for key, value in section.get("summary", {}).items():
            totals[key] = totals.get(key, 0) + int(value)
    failed = [str(section["project"]) for section in sections if section.get("failed")]
    if "reclaimable_bytes" in totals:
        # Sized (sweep --sizes): the projects that free the most first.
        sections = sorted(
            sections, key=lambda s: -int(s.get("summary", {}).get("reclaimable_bytes", 0))
        )
    return {
        "version": REPORT_VERSION,
        "kind": GROUP_REPORT_KIND,
        "group": group,
        "dry_run": dry_run,
        "projects_total": len(sections),
        "failed_projects": failed,
        "summary": totals,
        "projects": [dict(section) for section in sections],
    }


def as_document(result: GroupSweepResult) -> dict[str, Any]:
    sections = [project_section(outcome) for outcome in result.projects]
    document = group_document(result.group, result.dry_run, sections)
    document["subgroups"] = result.subgroups
    return document


def merge_reports(
    group: str, reports: Iterable[Path], expected: Sequence[str] = ()
) -> dict[str, Any]:
    """One group document from per-project sweep reports (``sweep --project P --report F``).

    A project in ``expected`` without a report failed: its sweep job did not get as far as
    writing one (it could not start, or was cancelled), so nothing says its tags are safe.
    A report that is not a project sweep report is bad input.
    """
    sections: dict[str, dict[str, Any]] = {}
    dry_runs: set[bool] = set()
    for path in reports:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{path} is not a readable JSON report ({error})") from None
        if not isinstance(document, dict) or "project" not in document or "tags" not in document:
            raise InputError(f"{path} is not a registry-cleanup sweep report")
        section = dict(document)
        section.setdefault("error", None)
        failed = bool(document.get("refused")) or any(
            tag.get("status") == "failed" for tag in document.get("tags", [])
        )
        if "failed" not in section:
            section["failed"] = failed or section["error"] is not None
        if section["failed"] and section["error"] is None:
            section["error"] = (
                f"the guard refused to delete: {document.get('guard')}"
                if document.get("refused")
                else "a deletion failed"
            )
        if isinstance(document.get("dry_run"), bool):
            dry_runs.add(document["dry_run"])
        sections[str(document["project"])] = section
    for project in expected:
        if project not in sections:
            sections[project] = {
                "version": REPORT_VERSION,
                "project": project,
                "dry_run": None,
                "summary": empty_summary(),
                "tags": [],
                "failed": True,
                "error": "no report: the project's sweep job did not finish",
            }
    dry_run = dry_runs.pop() if len(dry_runs) == 1 else None
    return group_document(group, dry_run, [sections[name] for name in sorted(sections)])


def summary_lines(document: Mapping[str, Any]) -> list[str]:
    """What stderr says at the end: totals, then each failed project by name and why."""
    mode = {True: "dry run", False: "deleting", None: "mixed"}[document.get("dry_run")]
    summary = status_counts(document["summary"])
    counts = ", ".join(f"{key} {value}" for key, value in summary.items() if value)
    failed = document["failed_projects"]
    lines = [
        f"sweep of group {document['group']} ({mode}): {document['projects_total']} projects, "
        f"{len(failed)} failed; {counts or 'no tags'}"
    ]
    errors = {s["project"]: s.get("error") for s in document["projects"] if s.get("failed")}
    lines += [f"failed: project {name}: {errors.get(name)}; its tags were kept" for name in failed]
    return lines


def print_tables(document: Mapping[str, Any], stream: TextIO) -> None:
    """One table per project, under the project's name; a failed project says why instead."""
    for section in document["projects"]:
        if section.get("failed") and not section.get("tags"):
            stream.write(f"project {section['project']}: FAILED: {section.get('error')}\n")
            continue
        title = f"project {section['project']}"
        if section.get("failed"):
            title += f" (FAILED: {section.get('error')})"
        rows = [
            (entry["repository"], entry["tag"], entry["status"], entry["reason"])
            for entry in section.get("tags", [])
        ]
        print_tag_table(stream, title, rows)
