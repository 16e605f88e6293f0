"""The page's pictures, as inline SVG: no script, no font, no image from anywhere, so the page's
``default-src 'none'`` holds. Every value from GitLab or the registry is escaped.

- storage: a bar per repository, split into what stays and what the cleanup frees
  (``sweep --sizes``);
- ages: how old the tags' images are, one stacked bar per age band, coloured by decision;
- the biggest reclaimable tags, as a table (a list of names reads better than a picture).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any

from registry_cleanup.domain.image_age import parse_created
from registry_cleanup.engine import sizes as engine_sizes
from registry_cleanup.output.figures import decimal_size

# The decisions' colours: the page's CSS variables, written out (SVG fills in a CSP-safe way).
STATUS_COLOURS = {
    "kept": "#108548",
    "would-delete": "#ab6100",
    "deleted": "#c91c00",
    "skipped": "#1f75cb",
    "absent": "#1f75cb",
    "failed": "#626168",
}
KEPT_FILL, FREED_FILL = "#9dc7b1", "#c91c00"
# Age bands: upper bound (exclusive) and label; the last catches everything older.
AGE_BANDS: tuple[tuple[timedelta | None, str], ...] = (
    (timedelta(days=1), "under a day"),
    (timedelta(days=7), "1-7 days"),
    (timedelta(days=30), "1-4 weeks"),
    (timedelta(days=90), "1-3 months"),
    (timedelta(days=365), "3-12 months"),
    (None, "over a year"),
)
UNKNOWN_AGE = "unknown"
WIDTH = 760
# The decisions whose images the cleanup frees, as reports write them.
FREEING = frozenset(status.value for status in engine_sizes.FREEING)


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts ``review-2`` before ``review-10``: digit runs compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", text)
        if part
    )


def storage_bars(repositories: Sequence[Mapping[str, Any]]) -> str:
    """One bar per repository, kept then reclaimable, all to one scale."""
    totals = [int(r["kept_bytes"]) + int(r["reclaimable_bytes"]) for r in repositories]
    largest = max([*totals, 1])
    bar_width, row = WIDTH - 10, 46
    parts = []
    for place, (repository, total) in enumerate(zip(repositories, totals, strict=True)):
        y = place * row
        kept, freed = int(repository["kept_bytes"]), int(repository["reclaimable_bytes"])
        kept_w = round(bar_width * kept / largest)
        freed_w = round(bar_width * freed / largest)
        unknown = int(repository.get("size_unknown", 0))
        bound = "at least " if unknown else ""
        label = (
            f"{repository['location']}: frees {bound}{decimal_size(freed)} of {decimal_size(total)}"
        )
        parts.append(
            f'<g class="repository" data-location="{escape(str(repository["location"]))}">'
            f'<text x="0" y="{y + 14}">{escape(label)}</text>'
            f'<rect class="kept" x="0" y="{y + 20}" width="{kept_w}" height="16" '
            f'fill="{KEPT_FILL}"><title>kept: {decimal_size(kept)}</title></rect>'
            f'<rect class="freed" x="{kept_w}" y="{y + 20}" width="{freed_w}" '
            f'height="16" fill="{FREED_FILL}"><title>freed: {decimal_size(freed)}</title></rect>'
            "</g>"
        )
    height = max(row * len(repositories), row)
    legend = _legend([("kept", KEPT_FILL), ("freed by the cleanup", FREED_FILL)], height + 4)
    return _svg("storage", height + 28, "Storage per repository: kept and freed", [*parts, legend])


def age_band(created: str | None, now: datetime) -> str:
    moment = parse_created(created)
    if moment is None:
        return UNKNOWN_AGE
    age = now - moment
    for limit, label in AGE_BANDS:
        if limit is None or age < limit:
            return label
    return AGE_BANDS[-1][1]


def age_histogram(tags: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """The tags per age band, each band's bar stacked by decision."""
    bands = [label for _, label in AGE_BANDS] + [UNKNOWN_AGE]
    counts: dict[str, dict[str, int]] = {band: {} for band in bands}
    for tag in tags:
        band = counts[age_band(tag.get("created_at"), now)]
        status = str(tag.get("status", ""))
        band[status] = band.get(status, 0) + 1
    tallest = max([sum(band.values()) for band in counts.values()] + [1])
    plot_height, column, margin = 160, WIDTH // len(bands), 20
    parts = []
    for place, label in enumerate(bands):
        # The tallest bar's count sits in the margin above it.
        x, top = place * column + 8, margin + plot_height
        for status, colour in STATUS_COLOURS.items():
            count = counts[label].get(status, 0)
            if not count:
                continue
            height = max(round(plot_height * count / tallest), 2)
            top -= height
            parts.append(
                f'<rect class="age" data-band="{escape(label)}" data-status="{escape(status)}" '
                f'data-count="{count}" x="{x}" y="{top}" width="{column - 16}" '
                f'height="{height}" fill="{colour}"><title>{escape(label)}: {count} '
                f"{escape(status)}</title></rect>"
            )
        total = sum(counts[label].values())
        parts.append(
            f'<text x="{x + (column - 16) // 2}" y="{margin + plot_height + 18}" '
            f'text-anchor="middle">{escape(label)}</text>'
            f'<text x="{x + (column - 16) // 2}" y="{top - 4}" text-anchor="middle">'
            f"{total if total else ''}</text>"
        )
    shown = {str(tag.get("status", "")) for tag in tags}
    legend = _legend(
        [(status, colour) for status, colour in STATUS_COLOURS.items() if status in shown],
        margin + plot_height + 30,
    )
    height = margin + plot_height + 54
    return _svg("ages", height, "Tags by the age of their image", [*parts, legend])


def biggest_reclaimable(tags: Sequence[Mapping[str, Any]], limit: int = 10) -> str:
    """The largest images the cleanup frees, largest first."""
    freeing = [
        tag for tag in tags if tag.get("status") in FREEING and tag.get("size_bytes") is not None
    ]
    freeing.sort(key=lambda tag: (-int(tag["size_bytes"]), natural_key(str(tag.get("tag")))))
    rows = "".join(
        f'<tr><td class="tag">{escape(str(tag.get("tag", "")))}</td>'
        f"<td>{escape(str(tag.get('repository', '')))}</td>"
        f'<td class="size">{escape(decimal_size(int(tag["size_bytes"])))}</td></tr>'
        for tag in freeing[:limit]
    )
    head = "<thead><tr><th>tag</th><th>repository</th><th>image size</th></tr></thead>"
    return f'<table id="biggest">{head}<tbody>{rows}</tbody></table>'


def _legend(entries: Sequence[tuple[str, str]], y: int) -> str:
    items, x = [], 0
    for label, colour in entries:
        items.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"></rect>'
            f'<text x="{x + 16}" y="{y + 11}">{escape(label)}</text>'
        )
        x += 24 + 8 * len(label)
    return f'<g class="legend">{"".join(items)}</g>'


def _svg(name: str, height: int, title: str, parts: Sequence[str]) -> str:
    return (
        f'<svg id="{name}" role="img" '
        f'aria-label="{escape(title)}" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-size="12" font-family="system-ui, sans-serif">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )
