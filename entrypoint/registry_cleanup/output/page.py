"""The sweep's report as one HTML page people look at: a plan, a result or an apply.

Self-contained on purpose: the page is a CI artifact opened from GitLab's pipeline and merge
request views, maybe offline, maybe years later, so it loads nothing: inline CSS, inline
JavaScript, no fonts, images or links to other sites. Every value from GitLab or the registry
is HTML-escaped; the report's JSON rides along in a data block for whoever wants the raw form.

Filters are plain JavaScript over ``data-status`` on each row; ``#status=would-delete`` in the
address selects a filter too, so a link can point at exactly the tags that will go.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from registry_cleanup.domain.image_age import parse_created
from registry_cleanup.output.charts import (
    age_histogram,
    biggest_reclaimable,
    natural_key,
    storage_bars,
)
from registry_cleanup.output.figures import figure_line, status_counts

_TITLES = {
    "plan": "plan (dry run, for review)",
    "sweep": "result",
    "apply": "applied plan",
}

_STYLE = """
:root { color-scheme: light; --fg: #1f1e24; --muted: #626168; --line: #dcdcde;
  --kept: #108548; --delete: #c91c00; --would: #ab6100; --skip: #1f75cb; --other: #626168; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); margin: 0; padding: 24px 32px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; display: flex; flex-wrap: wrap; gap: 2px 18px; }
.meta span { white-space: nowrap; }
.notice { border-left: 4px solid var(--would); background: #fdf1dd; padding: 8px 12px;
  margin: 8px 0; }
.notice.refused { border-color: var(--delete); background: #fdd4cd; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 12px; }
.filters button { font: inherit; border: 1px solid var(--line); background: #fff;
  border-radius: 16px; padding: 4px 12px; cursor: pointer; }
.filters button[aria-pressed="true"] { background: var(--fg); color: #fff;
  border-color: var(--fg); }
.filters .count { font-weight: 600; margin-left: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #f5f5f6; font-weight: 600; position: sticky; top: 0; }
td.tag { font-family: ui-monospace, Menlo, Consolas, monospace; min-width: 9em;
  overflow-wrap: anywhere; }
td.reason { overflow-wrap: anywhere; }
td.created { white-space: nowrap; color: var(--muted); }
td.digest { font-family: ui-monospace, Menlo, Consolas, monospace; color: var(--muted);
  white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.status-kept { color: var(--kept); } .status-deleted { color: var(--delete); }
.status-would-delete { color: var(--would); }
.status-skipped, .status-absent { color: var(--skip); }
.status-failed { color: #fff; background: var(--delete); padding: 0 6px; border-radius: 4px; }
tr[hidden] { display: none; }
svg { display: block; max-width: 100%; height: auto; margin: 8px 0 16px; }
svg text { fill: var(--fg); }
#figure { font-size: 16px; font-weight: 600; }
td.size { white-space: nowrap; }
#shown { color: var(--muted); }
"""

_SCRIPT = """
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("#tags tbody tr"));
  var buttons = Array.prototype.slice.call(document.querySelectorAll(".filters button"));
  function show(status) {
    var shown = 0;
    rows.forEach(function (row) {
      var visible = status === "all" || row.getAttribute("data-status") === status;
      row.hidden = !visible;
      if (visible) { shown += 1; }
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === status));
    });
    document.getElementById("shown").textContent =
      "showing " + shown + " of " + rows.length + " tags";
    document.body.setAttribute("data-filter", status);
  }
  function fromHash() {
    var match = /(?:^#|&)status=([a-z-]+)/.exec(window.location.hash);
    show(match ? match[1] : "all");
  }
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      var status = button.getAttribute("data-filter");
      history.replaceState(null, "", status === "all" ? "#" : "#status=" + status);
      show(status);
    });
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""


def human_size(size: int | None) -> str:
    if size is None:
        return "not reported by GitLab"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render(document: Mapping[str, Any], *, sizes: Mapping[str, int | None] | None = None) -> str:
    """The page for a sweep report document (output.sweep_table.as_document), a plan or an apply."""
    kind = str(document.get("kind", "sweep"))
    dry_run_sweep = kind == "sweep" and document.get("dry_run")
    title = "dry run" if dry_run_sweep else _TITLES.get(kind, kind)
    # The project's path where the report knows it (a CI job names its project by id).
    project = str(document.get("project_path") or document.get("project", ""))
    tags: Sequence[Mapping[str, Any]] = sorted(
        document.get("tags", []),
        key=lambda t: (str(t.get("repository", "")), natural_key(str(t.get("tag", "")))),
    )
    summary = status_counts(document.get("summary", {}))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network, ever: the page may only use what it carries.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>registry-cleanup {escape(title)}: {escape(project)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>registry-cleanup sweep {escape(title)}: project {escape(project)}</h1>",
        f'<p class="meta">{_meta(document)}</p>',
    ]
    parts += _notices(document)
    parts.append("<h2>Summary</h2>")
    parts.append(_filters(summary, len(tags)))
    parts += _pictures(document, tags)
    parts.append("<h2>Tags</h2>")
    parts.append('<p id="shown"></p>')
    parts.append(_tag_table(tags))
    parts.append("<h2>Repositories</h2>")
    parts.append(_repositories(document, tags, sizes or {}))
    data = json.dumps(document, indent=1).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" id="report-data">{data}</script>')
    parts.append(f"<script>{_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _pictures(document: Mapping[str, Any], tags: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the cleanup frees (a sized report), then the tags' ages by decision."""
    parts = []
    line = figure_line(document)
    repositories = [r for r in document.get("repositories", []) if "reclaimable_bytes" in r]
    if line is not None and repositories:
        parts += [
            "<h2>Storage</h2>",
            f'<p id="figure">{escape(line)}</p>',
            storage_bars(repositories),
            "<h2>Biggest reclaimable tags</h2>",
            biggest_reclaimable(tags),
        ]
    if tags:
        now = parse_created(document.get("generated_at")) or datetime.now(UTC)
        parts += ["<h2>Ages</h2>", age_histogram(tags, now)]
    return parts


def write_html(path: Path, document: Mapping[str, Any], sizes: Mapping[str, int | None]) -> None:
    from registry_cleanup.output.report import write_text

    write_text(path, render(document, sizes=sizes))


def _when(moment: object) -> str:
    """An ISO time as people read it in a table: date and minutes, UTC."""
    text = str(moment or "")
    return text[:16].replace("T", " ") + " UTC" if len(text) >= 16 else text


def _meta(document: Mapping[str, Any]) -> str:
    items = []
    plan = document.get("plan")
    if isinstance(plan, Mapping):
        for label, key in (("plan", "file"), ("plan made", "created_at")):
            if plan.get(key):
                shown = escape(str(plan[key]))
                items.append(f"<span>{label}: <strong>{shown}</strong></span>")
    for label, key in (
        ("made", "created_at"),
        ("written", "generated_at"),
        ("GitLab", "instance"),
        ("default branch", "default_branch"),
        ("branches listed", "branches"),
        ("by", "tool"),
    ):
        value = document.get(key)
        if value not in (None, ""):
            items.append(f"<span>{escape(label)}: <strong>{escape(str(value))}</strong></span>")
    return "".join(items)


def _notices(document: Mapping[str, Any]) -> list[str]:
    found = []
    guard = document.get("guard")
    if guard:
        refused = bool(document.get("refused"))
        what = "refused to delete" if refused else "warning"
        css = "notice refused" if refused else "notice"
        found.append(
            f'<p class="{css}"><strong>{what}:</strong> the branch list looks broken: '
            f"{escape(str(guard))}</p>"
        )
    for note in document.get("notes", []):
        found.append(f'<p class="notice">{escape(str(note))}</p>')
    return found


def _filters(summary: Mapping[str, int], total: int) -> str:
    buttons = [
        f'<button type="button" data-filter="all" aria-pressed="true">all'
        f'<span class="count">{total}</span></button>'
    ]
    for status, count in summary.items():
        if count:
            buttons.append(
                f'<button type="button" data-filter="{escape(status)}" aria-pressed="false">'
                f'{escape(status)}<span class="count">{count}</span></button>'
            )
    group = '<div class="filters" role="group" aria-label="filter by decision">'
    return f"{group}{''.join(buttons)}</div>"


def _tag_table(tags: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for entry in tags:
        status = str(entry.get("status", ""))
        digest = str(entry.get("digest") or "")
        short = digest.removeprefix("sha256:")[:12]
        rows.append(
            f'<tr data-status="{escape(status)}">'
            f"<td>{escape(str(entry.get('repository', '')))}</td>"
            f'<td class="tag">{escape(str(entry.get("tag", "")))}</td>'
            f'<td><span class="status status-{escape(status)}">{escape(status)}</span></td>'
            f'<td class="reason">{escape(str(entry.get("reason", "")))}</td>'
            f'<td class="digest" title="{escape(digest)}">{escape(short)}</td>'
            f'<td class="created">{escape(_when(entry.get("created_at")))}</td></tr>'
        )
    head = (
        "<thead><tr><th>repository</th><th>tag</th><th>decision</th><th>reason</th>"
        "<th>digest</th><th>image created</th></tr></thead>"
    )
    return f'<table id="tags">{head}<tbody>{"".join(rows)}</tbody></table>'


def _repositories(
    document: Mapping[str, Any],
    tags: Sequence[Mapping[str, Any]],
    sizes: Mapping[str, int | None],
) -> str:
    locations = [str(r["location"]) for r in document.get("repositories", []) if "location" in r]
    locations += [loc for loc in sizes if loc not in locations]
    locations += sorted({str(t.get("repository")) for t in tags} - set(locations))
    rows = []
    for location in locations:
        count = sum(1 for t in tags if t.get("repository") == location)
        rows.append(
            f"<tr><td>{escape(location)}</td><td>{count}</td>"
            f'<td class="size">{escape(human_size(sizes.get(location)))}</td></tr>'
        )
    head = "<thead><tr><th>repository</th><th>tags</th><th>size</th></tr></thead>"
    return f'<table id="repositories">{head}<tbody>{"".join(rows)}</tbody></table>'
