"""The one output object every command ends with: what it prints, keeps and exits with.

A command hands it a result; it writes the report file and the page first (so a failed job
still leaves its artifacts), then the table or the JSON document on stdout, then the notes,
warnings and summary on stderr, and returns the exit code. Everything the user reads on
stderr goes through ``stderr_line``, so every message carries the command's name.

Imported by ``delete``, whose start-up is most of a stop job: only light modules at the top.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from registry_cleanup.errors import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from registry_cleanup.domain.refs import ImageRef
    from registry_cleanup.engine.group_sweep import GroupSweepResult
    from registry_cleanup.engine.outcome import Outcome
    from registry_cleanup.engine.sweep import SweepResult

PROG = "registry-cleanup"


def stderr_line(message: str) -> None:
    """One line on stderr, prefixed with the command's name, as every message we print."""
    typer.echo(f"{PROG}: {message}", err=True)


@dataclass(frozen=True)
class Output:
    """How the user asked to see a command's result: JSON or a table or line, a report file,
    a page. Each ``show_*`` method returns the command's exit code."""

    json_output: bool = False
    report: Path | None = None
    page: Path | None = None

    # -- one tag: delete -------------------------------------------------------------------------

    def show_delete(self, outcome: Outcome, target: ImageRef, *, dry_run: bool) -> int:
        from registry_cleanup.output.report import delete_document, outcome_json, outcome_line

        if self.report is not None:
            self._write(self.report, delete_document(outcome, target, dry_run=dry_run))
        if self.json_output:
            typer.echo(outcome_json(outcome))
        elif not outcome.status.is_failure:
            typer.echo(outcome_line(outcome))
        if outcome.status.is_failure:
            stderr_line(outcome.reason)
            return EXIT_FAILURE
        return EXIT_OK

    # -- a project: sweep, sweep --apply --------------------------------------------------------

    def show_sweep(
        self,
        result: SweepResult,
        *,
        document: Mapping[str, Any] | None = None,
        reported_sizes: Callable[[], Mapping[str, int | None]] | None = None,
    ) -> int:
        """A sweep's (plan's, apply's) report file, page, table or JSON, notes, guard, summary.
        ``reported_sizes`` (GitLab's) is asked only when a page is written: each repository's
        size costs a request."""
        from registry_cleanup.output.sweep_table import as_document, print_table, summary_line

        shown = document if document is not None else as_document(result)
        if self.report is not None:
            self._write(self.report, shown)
        if self.page is not None:
            from registry_cleanup.output.page import write_html

            write_html(self.page, shown, reported_sizes() if reported_sizes is not None else {})
        if self.json_output:
            typer.echo(json.dumps(shown, indent=2))
        else:
            print_table(result, sys.stdout)
        for note in result.notes:
            stderr_line(f"note: {note}")
        if result.refusal is not None:
            verb = "refusing to delete" if not result.dry_run else "a sweep --delete would refuse"
            stderr_line(f"{verb}: {result.refusal}")
        if result.guard is not None:
            if result.refused and result.refusal is None:
                stderr_line(
                    f"refusing to delete: the branch list looks broken: {result.guard}. "
                    "If it is right, run again with --trust-branch-list"
                )
            else:
                stderr_line(f"warning: the branch list looks broken: {result.guard}")
        stderr_line(summary_line(result))
        self._figures(shown)
        return EXIT_FAILURE if result.failed else EXIT_OK

    # -- a group: sweep --group, merge-reports ---------------------------------------------------

    def show_group(self, result: GroupSweepResult) -> int:
        from registry_cleanup.output.group_report import as_document

        notes = [
            f"note: project {outcome.project}: {note}"
            for outcome in result.projects
            if outcome.result is not None
            for note in outcome.result.notes
        ]
        return self.show_merged(as_document(result), tables=True, notes=notes)

    def show_merged(
        self, document: Mapping[str, Any], *, tables: bool = False, notes: Sequence[str] = ()
    ) -> int:
        """A group's document: written, printed as JSON (or as tables), its projects' notes,
        then its summary."""
        from registry_cleanup.output.group_report import print_tables, summary_lines

        if self.report is not None:
            self._write(self.report, document)
        if self.json_output:
            typer.echo(json.dumps(document, indent=2))
        elif tables:
            print_tables(document, sys.stdout)
        for line in [*notes, *summary_lines(document)]:
            stderr_line(line)
        self._figures(document)
        return EXIT_FAILURE if document["failed_projects"] else EXIT_OK

    # -- settings: policy ------------------------------------------------------------------------

    def show_mapping(self, mapping: Mapping[str, Any]) -> int:
        """A record such as the cleanup policy: JSON, or one ``key: value`` line per key."""
        if self.json_output:
            typer.echo(json.dumps(mapping, indent=2, sort_keys=True))
        else:
            for key in sorted(mapping):
                typer.echo(f"{key}: {mapping[key]}")
        return EXIT_OK

    # -------------------------------------------------------------------------------------------

    def _figures(self, document: Mapping[str, Any]) -> None:
        """A sized report's last words: that the figures are an upper bound, then what the run
        frees; on stdout, the table's last line (and the job log's), unless stdout is JSON."""
        from registry_cleanup.output.figures import UPPER_BOUND, figure_line

        line = figure_line(document)
        if line is None:
            return
        stderr_line(f"note: {UPPER_BOUND}")
        if self.json_output:
            stderr_line(line)
        else:
            typer.echo(line)

    @staticmethod
    def _write(path: Path, document: Mapping[str, Any]) -> None:
        from registry_cleanup.output.report import write_document

        write_document(path, document)
