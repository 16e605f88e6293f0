"""The guard: a branch list that looks broken makes a sweep delete nothing (unless trusted)."""

from __future__ import annotations

from collections.abc import Sequence

# Guard: a branch list this much smaller than the tags it orphans looks broken.
GUARD_RATIO = 10
GUARD_MINIMUM_ORPHANS = 10


def broken_branch_list(
    orphan_count: int, branches: Sequence[str], default_branch: str | None
) -> str | None:
    """Why the branch list looks broken (so nothing should be deleted), or None."""
    if orphan_count == 0:
        return None  # nothing would be deleted, so nothing to guard
    if not branches:
        return "the branch list is empty"
    if default_branch and default_branch not in branches:
        return f"the default branch {default_branch!r} is not in the branch list"
    if orphan_count >= GUARD_MINIMUM_ORPHANS and orphan_count > GUARD_RATIO * len(branches):
        return (
            f"{orphan_count} tags have no branch but only {len(branches)} branches were listed "
            f"(more than {GUARD_RATIO} orphans per branch)"
        )
    return None
