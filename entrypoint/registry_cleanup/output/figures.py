"""The storage figures (``sweep --sizes``) as reports carry them and people read them.

JSON: ``summary.reclaimable_bytes``, ``summary.kept_bytes``, ``summary.size_unknown`` (a count
of tags), the same three per repository under ``repositories[]``, and each tag's
``size_bytes``. People: one line, "frees about 3.4 GB of 5.1 GB in 2 repositories", and one
line saying the figure is an upper bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry_cleanup.engine.sizes import Sizes

SIZE_KEYS = ("reclaimable_bytes", "kept_bytes", "size_unknown")
UPPER_BOUND = (
    "the figures are an upper bound: a layer another project's repository also uses stays "
    "in the registry"
)


def summary_fields(sizes: Sizes) -> dict[str, int]:
    return {
        "reclaimable_bytes": sizes.reclaimable_bytes,
        "kept_bytes": sizes.kept_bytes,
        "size_unknown": sizes.size_unknown,
    }


def repository_fields(sizes: Sizes) -> list[dict[str, Any]]:
    return [
        {
            "location": repository.location,
            "reclaimable_bytes": repository.figures.reclaimable_bytes,
            "kept_bytes": repository.figures.kept_bytes,
            "size_unknown": repository.figures.size_unknown,
        }
        for repository in sizes.repositories
    ]


def status_counts(summary: Mapping[str, Any]) -> dict[str, int]:
    """A summary's counts of tags by status, without the figures beside them."""
    return {key: int(value) for key, value in summary.items() if key not in SIZE_KEYS}


def decimal_size(size: int) -> str:
    """Bytes as storage is sold and counted (GitLab's namespace storage too): 1 GB = 10^9 B."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    value, unit = float(size), units[0]
    for unit in units:
        if value < 1000 or unit == units[-1]:
            break
        value /= 1000
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def figure_line(document: Mapping[str, Any]) -> str | None:
    """ "frees about 3.4 GB of 5.1 GB in 2 repositories" for a sized report, else None."""
    summary = document.get("summary", {})
    if "reclaimable_bytes" not in summary:
        return None
    reclaimable, kept = int(summary["reclaimable_bytes"]), int(summary["kept_bytes"])
    unknown = int(summary.get("size_unknown", 0))
    repositories = _repository_count(document)
    verb = "would free" if document.get("dry_run") else "frees"
    bound = "at least" if unknown else "about"
    line = (
        f"{verb} {bound} {decimal_size(reclaimable)} of {decimal_size(reclaimable + kept)} in "
        f"{repositories} {'repository' if repositories == 1 else 'repositories'}"
    )
    if unknown:
        line += f" ({unknown} {'tag' if unknown == 1 else 'tags'} of unknown size)"
    return line


def _repository_count(document: Mapping[str, Any]) -> int:
    if "projects" in document:
        return sum(_repository_count(section) for section in document["projects"])
    return len(document.get("repositories", []))
