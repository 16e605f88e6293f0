"""What GitLab's rate limit headers say (lib/gitlab/rack_attack/request_throttle_data.rb):
the window a response was counted in, and how long to wait after a 429. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# A 429 without any header (an endpoint's own limit): wait 1 s, then 2, 4, ... up to a minute.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Window:
    """What one response said of the rate limit window it was counted in."""

    name: str
    remaining: int
    limit: int | None  # the window's own limit: observed + remaining, known while remaining > 0
    reset_epoch: int  # RateLimit-Reset: which window this is
    resets_in: float  # seconds from the response to the window's end, never less than the truth


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _server_time(headers: Mapping[str, str], wall_now: float) -> float:
    """GitLab's clock when it answered (Date), else ours. Date has whole seconds, cut down, so
    times measured from it are upper bounds: a wait computed from it is never too short."""
    date = headers.get("Date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            pass
    return wall_now


def throttle_name(headers: Mapping[str, str]) -> str:
    # Shown to the user: keep it to the characters a throttle name has.
    return re.sub(r"[^A-Za-z0-9_.:-]", "", headers.get("RateLimit-Name", ""))[:80]


def window_from(headers: Mapping[str, str], wall_now: float) -> Window | None:
    """The window a response reports, or None when it carries no RateLimit headers."""
    remaining = _integer(headers.get("RateLimit-Remaining"))
    reset = _integer(headers.get("RateLimit-Reset"))
    if remaining is None or reset is None:
        return None
    observed = _integer(headers.get("RateLimit-Observed"))
    limit = observed + remaining if observed is not None and remaining > 0 else None
    resets_in = max(0.0, reset - _server_time(headers, wall_now))
    return Window(throttle_name(headers), max(remaining, 0), limit, reset, resets_in)


def retry_delay(headers: Mapping[str, str], attempt: int, wall_now: float) -> tuple[float, str]:
    """Seconds to wait after a 429 (the ``attempt``-th in a row for this request, from 0), and
    what said so."""
    retry_after = headers.get("Retry-After")
    seconds = _integer(retry_after)
    if seconds is not None:
        return float(max(seconds, 0)), "as Retry-After says"
    if retry_after:  # Retry-After may also be an HTTP date
        try:
            moment = parsedate_to_datetime(retry_after).timestamp()
            return max(0.0, moment - _server_time(headers, wall_now)), "as Retry-After says"
        except (TypeError, ValueError, IndexError):
            pass
    window = window_from(headers, wall_now)
    if window is not None:
        return window.resets_in, "until RateLimit-Reset"
    backoff = min(FIRST_BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_SECONDS)
    return backoff, "backing off: GitLab did not say how long"
