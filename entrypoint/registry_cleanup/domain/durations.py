"""Durations as people and GitLab write them (30m, 12h, 7d, 2w, 1month), and counts."""

from __future__ import annotations

import re
from datetime import timedelta

from registry_cleanup.errors import InputError

_DURATION = re.compile(r"([0-9]+)(s|m|min|h|d|w|months?)")
_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    # GitLab's older_than counts a month as 30 days.
    "month": timedelta(days=30),
    "months": timedelta(days=30),
}


def parse_duration(text: str, *, option: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InputError(
            f"{option} {text!r} is not a duration; write a number and a unit: "
            "30m, 12h, 7d, 2w or 1month"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_count(text: str, *, option: str) -> int:
    if not text.strip().isdigit():
        raise InputError(f"{option} {text!r} is not a whole number of 0 or more")
    return int(text)
