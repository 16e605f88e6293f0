"""Staying inside GitLab's API rate limit: slow down before a 429, wait one out after it.

GitLab counts authenticated API traffic per user in fixed windows (Rack::Attack
``throttle_authenticated_api``; gitlabhq lib/gitlab/rack_attack.rb), REST and
``POST /api/graphql`` alike, all of a user's tokens together. What it tells a client
(lib/gitlab/rack_attack/request_throttle_data.rb):

- a 429 of Rack::Attack carries ``RateLimit-Name``, ``-Limit`` (per 60 seconds, rounded up:
  not the limit of the window), ``-Observed``, ``-Remaining``, ``-Reset`` (Unix time the window
  ends), ``-ResetTime`` (the same as an HTTP date) and ``Retry-After`` (whole seconds);
- other responses carry the first five only where the feature flag
  ``rate_limiting_headers_for_unthrottled_requests`` is on (lib/gitlab/middleware/
  rack_attack_headers.rb; GitLab.com per its rate limits page, off by default elsewhere);
- limits of single endpoints (Gitlab::ApplicationRateLimiter) answer 429 with no header at all.

So :class:`RateLimitedSession` paces requests while headers say the window's budget is running
low, and answers every 429 itself: it waits (Retry-After, else RateLimit-Reset, else a growing
backoff) and sends the same request again, as often as it takes. python-gitlab never sees a
429, so its own retry budget is left for 5xx and dropped connections. The arithmetic is in
:class:`Budget`, pure and driven by the caller's clock; reading the headers is rate_headers.py.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from registry_cleanup.gitlab.rate_headers import retry_delay, throttle_name, window_from

TOO_MANY_REQUESTS = 429
# Full speed while more than this share of the window's budget is left; below it the rest is
# spread evenly over the time to the reset, so other jobs of the same user keep some of it.
PACE_BELOW_SHARE = 0.5

# While a new window's whole budget is on its way and no answer has said when it ends.
ANSWER_POLL_SECONDS = 0.05
# Waits for the reset shorter than this pass without a line: they are no news to the user.
ANNOUNCE_SECONDS = 1.0

Notify = Callable[[str], None]


def to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


def _seconds(value: float) -> str:
    return f"{math.ceil(value)} s" if value >= 1 else f"{value:.1f} s"


def _named(name: str) -> str:
    return f" (RateLimit-Name {name})" if name else ""


@dataclass(frozen=True)
class Reservation:
    wait: float  # seconds to sleep before going on
    final: bool  # True: then send; False: then ask again (the window had to end first)
    notice: str | None = None  # a line for the user, at most one per window and kind


class Budget:
    """The requests left in the current window, as the last headers and our own sending say.

    Not thread-safe on its own: RateLimitedSession holds a lock around every call. Times are
    the caller's monotonic clock; ``wall_now`` (Unix time) is only read against GitLab's
    headers, which speak in Unix time.
    """

    def __init__(self) -> None:
        self._name = ""
        self._remaining: int | None = None  # None: nothing known (no headers yet)
        self._limit: int | None = None
        self._reset_epoch: int | None = None  # RateLimit-Reset of the window we count in
        self._ended_epoch: int | None = None  # ... and of the last one we saw end
        self._resets_at = 0.0  # math.inf: a new window whose end no answer has told us yet
        self._next_start = 0.0
        self._next_seq = 0
        self._in_flight: set[int] = set()
        self._granted_unsent = 0  # reservations counted against the budget, not yet sent
        self._announced: set[tuple[int | None, str]] = set()
        self._quiet_until = 0.0  # while one announced 429 wait runs, the others stay silent
        self._hold_until = 0.0  # after a 429: nothing goes out before this

    def reserve(self, now: float) -> Reservation:
        """May a request start now? Counts it against the budget if so."""
        if now < self._hold_until:
            return Reservation(self._hold_until - now, final=False)
        if self._remaining is not None and now >= self._resets_at:
            # The window is over. The new one holds the same limit, as far as we know, less
            # what is still on its way (GitLab may count that in the new one); the first
            # answers from it say how it really stands and when it ends.
            self._ended_epoch = self._reset_epoch
            self._resets_at = math.inf
            self._remaining = None if self._limit is None else self._limit - len(self._in_flight)
        if self._remaining is None:
            return Reservation(0.0, final=True)
        if self._resets_at == math.inf:
            if self._remaining > 0:
                return self._granted(0.0)
            if not self._in_flight and not self._granted_unsent:
                # No answer is coming that could tell us more: go on without a budget.
                self._remaining = None
                return Reservation(0.0, final=True)
            # The new window's whole limit is on its way: wait for the first answer.
            return Reservation(ANSWER_POLL_SECONDS, final=False)
        left = self._resets_at - now
        if self._remaining <= 0:
            notice = self._once(
                now,
                left,
                "exhausted",
                f"GitLab rate limit reached{_named(self._name)}: no requests left until it "
                f"resets, waiting {_seconds(left)}",
            )
            return Reservation(left, final=False, notice=notice)
        if self._limit is not None and self._remaining > self._limit * PACE_BELOW_SHARE:
            return self._granted(0.0)
        notice = self._once(
            now,
            0.0,
            "pacing",
            f"GitLab rate limit nearly reached{_named(self._name)}: {self._remaining} requests "
            f"left for the next {_seconds(left)}, spreading them out",
        )
        # The rest, evenly over the time from this request's turn to the reset.
        start = max(now, self._next_start)
        self._next_start = start + max(self._resets_at - start, 0.0) / self._remaining
        return self._granted(start - now, notice)

    def _granted(self, wait: float, notice: str | None = None) -> Reservation:
        self._remaining = (self._remaining or 0) - 1  # callers know it is set
        self._granted_unsent += 1
        return Reservation(wait, final=True, notice=notice)

    def sent(self) -> int:
        """A request goes out now; its number, for :meth:`answered`."""
        seq = self._next_seq
        self._next_seq += 1
        self._in_flight.add(seq)
        self._granted_unsent = max(self._granted_unsent - 1, 0)
        return seq

    def forget(self, seq: int) -> None:
        """The request got no answer (a dropped connection)."""
        self._in_flight.discard(seq)

    def answered(self, seq: int, headers: Mapping[str, str], now: float, wall_now: float) -> None:
        """Learn from the answer to request ``seq``, received at ``now``."""
        self._in_flight.discard(seq)
        window = window_from(headers, wall_now)
        if window is None:
            return
        newest = max(self._reset_epoch or 0, self._ended_epoch or 0)
        if window.reset_epoch < newest or window.reset_epoch == self._ended_epoch:
            return  # an answer from a window that has already ended
        # GitLab counted this request and those before it; whatever we sent later, and what
        # is still unanswered from before, may not be in its count yet: assume it is not.
        later = self._next_seq - seq - 1
        earlier_unanswered = sum(1 for other in self._in_flight if other < seq)
        remaining = window.remaining - later - earlier_unanswered
        resets_at = now + window.resets_in
        if window.reset_epoch == self._reset_epoch and self._remaining is not None:
            remaining = min(remaining, self._remaining)
            # Each answer's end is an upper bound (whole seconds in Date); the least is nearest.
            resets_at = min(resets_at, self._resets_at)
        else:
            self._next_start = now
        self._name, self._reset_epoch = window.name, window.reset_epoch
        self._remaining = remaining
        self._limit = window.limit if window.limit is not None else self._limit
        self._resets_at = resets_at

    def throttled(
        self, headers: Mapping[str, str], attempt: int, now: float, wall_now: float
    ) -> tuple[float, str | None]:
        """A 429 (after :meth:`answered`): seconds to wait, and a line for the user unless an
        announced wait is still running."""
        wait, because = retry_delay(headers, attempt, wall_now)
        # Hold every request back until then, not just this one: they share the budget. (The
        # window, if the 429 told of one, :meth:`answered` has already taken.)
        self._hold_until = max(self._hold_until, now + wait)
        notice = None
        if now >= self._quiet_until:
            name = throttle_name(headers)
            notice = f"GitLab rate limit reached{_named(name)}: waiting {_seconds(wait)}, {because}"
            self._quiet_until = now + wait
            # The requests held back until this window ends need no line of their own.
            self._announced.add((self._reset_epoch, "exhausted"))
        return wait, notice

    def _once(self, now: float, wait: float, kind: str, line: str) -> str | None:
        """``line`` the first time for its kind, unless an announced wait is running."""
        # Pacing is said once a run (it goes on quietly window after window); a wait for the
        # reset once a window.
        key = (None if kind == "pacing" else self._reset_epoch, kind)
        if key in self._announced or now < self._quiet_until or 0 < wait < ANNOUNCE_SECONDS:
            return None
        self._announced.add(key)
        self._quiet_until = max(self._quiet_until, now + wait)
        return line


class RateLimitedSession(requests.Session):
    """A requests session for python-gitlab that keeps to GitLab's rate limit (module doc).

    Safe to share between the sweep's worker threads: the budget is behind one lock, and the
    waits happen outside it.
    """

    def __init__(
        self,
        notify: Notify = to_stderr,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self._budget = Budget()
        self._lock = threading.Lock()
        self._notify = notify
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # noqa: ANN401 (requests' own keywords)
        attempt = 0
        while True:
            seq = self._wait_for_budget()
            try:
                response = super().send(request, **kwargs)
            except BaseException:
                with self._lock:
                    self._budget.forget(seq)
                raise
            with self._lock:
                now, wall = self._clock(), self._wall_clock()
                self._budget.answered(seq, response.headers, now, wall)
                if response.status_code != TOO_MANY_REQUESTS:
                    return response
                wait, notice = self._budget.throttled(response.headers, attempt, now, wall)
            response.close()
            if notice:
                self._notify(notice)
            self._sleep(wait)
            attempt += 1

    def _wait_for_budget(self) -> int:
        while True:
            with self._lock:
                reservation = self._budget.reserve(self._clock())
            if reservation.notice:
                self._notify(reservation.notice)
            if reservation.wait > 0:
                self._sleep(reservation.wait)
            if reservation.final:
                break
        with self._lock:
            return self._budget.sent()
