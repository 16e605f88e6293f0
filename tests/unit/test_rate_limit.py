"""The rate limit arithmetic of registry_cleanup.gitlab.rate_limit, on a simulated clock.

The headers are GitLab's (lib/gitlab/rack_attack/request_throttle_data.rb); the simulated server
is the emulator's own Rack::Attack window (tests/fakes/rate_limits.py), so what passes here is
what the integration tests then see over HTTP.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from email.utils import formatdate

import pytest

from registry_cleanup.gitlab.rate_headers import MAX_BACKOFF_SECONDS, retry_delay, window_from
from registry_cleanup.gitlab.rate_limit import Budget
from tests.fakes.rate_limits import RateLimit, Throttle

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, on a window boundary


def gitlab_headers(remaining: int, observed: int, reset: int, date: float) -> dict[str, str]:
    return {
        "RateLimit-Name": "throttle_authenticated_api",
        "RateLimit-Limit": "60",
        "RateLimit-Observed": str(observed),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "Date": formatdate(date, usegmt=True),
    }


def test_a_window_is_read_from_gitlabs_headers_and_measured_on_its_clock() -> None:
    # GitLab's clock is 100 s behind ours: the time left comes from its Date, not ours.
    window = window_from(gitlab_headers(12, 18, int(NOW) + 7, NOW), wall_now=NOW + 100)

    assert window is not None
    assert (window.name, window.remaining, window.limit) == ("throttle_authenticated_api", 12, 30)
    assert window.resets_in == 7.0
    assert window_from({"Content-Type": "application/json"}, wall_now=NOW) is None


def test_an_exhausted_window_gives_no_limit_since_observed_may_exceed_it() -> None:
    window = window_from(gitlab_headers(0, 45, int(NOW) + 3, NOW), wall_now=NOW)

    assert window is not None
    assert (window.remaining, window.limit) == (0, None)


def test_a_429_waits_retry_after_else_until_the_reset_else_backs_off_up_to_a_minute() -> None:
    reset = gitlab_headers(0, 31, int(NOW) + 5, NOW)

    assert retry_delay({**reset, "Retry-After": "2"}, 0, NOW) == (2.0, "as Retry-After says")
    dated = {"Retry-After": formatdate(NOW + 9, usegmt=True), "Date": formatdate(NOW, usegmt=True)}
    assert retry_delay(dated, 0, NOW) == (9.0, "as Retry-After says")
    assert retry_delay(reset, 0, NOW) == (5.0, "until RateLimit-Reset")
    backoffs = [retry_delay({}, attempt, NOW)[0] for attempt in range(8)]
    assert backoffs == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]


def learned(budget: Budget, remaining: int, observed: int, resets_in: int, now: float) -> None:
    seq = budget.sent()
    budget.answered(seq, gitlab_headers(remaining, observed, int(now) + resets_in, now), now, now)


def test_full_speed_while_more_than_half_the_budget_is_left() -> None:
    budget = Budget()
    learned(budget, remaining=20, observed=10, resets_in=2, now=NOW)

    waits = [budget.reserve(NOW).wait for _ in range(5)]

    assert waits == [0.0] * 5


def test_below_half_the_rest_is_spread_over_the_time_to_the_reset() -> None:
    budget = Budget()
    learned(budget, remaining=10, observed=20, resets_in=2, now=NOW)

    reservations = [budget.reserve(NOW) for _ in range(10)]

    # 10 requests over 2 s: one every 0.2 s, the first at once.
    assert [round(r.wait, 6) for r in reservations] == [round(0.2 * n, 6) for n in range(10)]
    assert all(r.final for r in reservations)
    assert reservations[0].notice is not None
    assert "10 requests left" in reservations[0].notice
    assert all(r.notice is None for r in reservations[1:])


def test_with_nothing_left_it_waits_for_the_reset_then_goes_freely() -> None:
    budget = Budget()
    learned(budget, remaining=1, observed=29, resets_in=2, now=NOW)
    assert budget.reserve(NOW).final

    held = budget.reserve(NOW + 0.5)

    assert (held.wait, held.final) == (1.5, False)
    assert held.notice is not None
    assert "no requests left" in held.notice
    after = budget.reserve(NOW + 2.0)
    assert (after.wait, after.final) == (0.0, True)


def test_requests_sent_after_the_answered_one_count_against_what_it_reported() -> None:
    budget = Budget()
    first = budget.sent()
    for _ in range(4):  # sent while the first was on its way: GitLab may not have counted them
        budget.sent()
    budget.answered(first, gitlab_headers(14, 16, int(NOW) + 2, NOW), NOW, NOW)

    # 14 reported, 4 of them already spent: 10 left, so pacing starts (below half of 30).
    reservation = budget.reserve(NOW)
    assert reservation.notice is not None
    assert "10 requests left" in reservation.notice


def test_an_answer_from_an_ended_window_is_ignored() -> None:
    budget = Budget()
    learned(budget, remaining=25, observed=5, resets_in=2, now=NOW + 2)
    stale = budget.sent()
    budget.answered(stale, gitlab_headers(0, 30, int(NOW) + 2, NOW + 1.9), NOW + 2, NOW + 2)

    assert budget.reserve(NOW + 2).wait == 0.0


def test_a_429_holds_every_request_back_and_is_announced_once() -> None:
    budget = Budget()
    headers = {**gitlab_headers(0, 31, int(NOW) + 2, NOW), "Retry-After": "2"}
    seqs = [budget.sent() for _ in range(3)]
    notices = []
    for seq in seqs:
        budget.answered(seq, headers, NOW, NOW)
        wait, notice = budget.throttled(headers, 0, NOW, NOW)
        assert wait == 2.0
        notices.append(notice)

    assert notices[0] == (
        "GitLab rate limit reached (RateLimit-Name throttle_authenticated_api): waiting 2 s, "
        "as Retry-After says"
    )
    assert notices[1:] == [None, None]
    held = budget.reserve(NOW + 1)
    assert (held.wait, held.final, held.notice) == (1.0, False, None)


def test_a_429_without_headers_holds_back_for_its_backoff() -> None:
    budget = Budget()
    seq = budget.sent()
    budget.answered(seq, {}, NOW, NOW)
    wait, notice = budget.throttled({}, 0, NOW, NOW)

    assert wait == 1.0
    assert (
        notice == "GitLab rate limit reached: waiting 1 s, backing off: GitLab did not say how long"
    )
    assert budget.reserve(NOW + 0.5).wait == 0.5
    assert budget.reserve(NOW + 1.0).wait == 0.0


def test_a_429_without_headers_does_not_end_the_window_it_came_in() -> None:
    budget = Budget()
    learned(budget, remaining=20, observed=10, resets_in=5, now=NOW)
    seq = budget.sent()
    budget.answered(seq, {}, NOW, NOW)
    budget.throttled({}, 0, NOW, NOW)  # an endpoint's own limit: back off 1 s

    assert budget.reserve(NOW + 1.0).wait == 0.0
    # The window goes on: what GitLab says of it still counts.
    learned(budget, remaining=4, observed=26, resets_in=4, now=NOW + 1.0)
    pacing = budget.reserve(NOW + 1.0)
    assert pacing.notice is not None
    assert "requests left" in pacing.notice


def test_the_throttle_name_shown_is_one_word_of_name_characters() -> None:
    headers = {"RateLimit-Name": "throttle_x\r\nSet-Cookie: a=b", "Retry-After": "1"}
    _, notice = Budget().throttled(headers, 0, NOW, NOW)

    assert notice == (
        "GitLab rate limit reached (RateLimit-Name throttle_xSet-Cookie:ab): waiting 1 s, "
        "as Retry-After says"
    )


# -- the whole loop: workers, the budget, and GitLab's fixed window on one simulated clock -----


@dataclass
class Outcome:
    served: int
    throttled: int
    seconds: float


def simulate(limit: RateLimit, workers: int, requests: int, latency: float) -> Outcome:
    """``workers`` threads send ``requests`` requests, each ``latency`` each way, through one
    Budget, to Rack::Attack's window (tests/fakes/rate_limits.Throttle), as the session does."""
    budget, throttle = Budget(), Throttle(limit)
    start = NOW + 0.3
    order = itertools.count()
    events: list[tuple[float, int, int, str, object]] = [
        (start, next(order), worker, "ready", None) for worker in range(workers)
    ]
    left, served, throttled, attempts, busy = requests, 0, 0, [0] * workers, [False] * workers
    end = start
    while events:
        now, _, worker, kind, payload = heapq.heappop(events)
        end = max(end, now)
        if kind == "ready":
            if not busy[worker]:
                if left == 0:
                    continue
                left, busy[worker], attempts[worker] = left - 1, True, 0
            reservation = budget.reserve(now)
            step = "send" if reservation.final else "ready"
            heapq.heappush(events, (now + reservation.wait, next(order), worker, step, None))
        elif kind == "send":
            seq = budget.sent()
            verdict = throttle.check("user:1", now + latency)
            headers = {**verdict.headers, "Date": formatdate(int(now + latency), usegmt=True)}
            answer = (seq, headers, verdict.throttled)
            heapq.heappush(events, (now + 2 * latency, next(order), worker, "answer", answer))
        else:
            seq, headers, was_throttled = payload  # type: ignore[misc]
            budget.answered(seq, headers, now, now)
            if was_throttled:
                throttled += 1
                wait, _ = budget.throttled(headers, attempts[worker], now, now)
                attempts[worker] += 1
                heapq.heappush(events, (now + wait, next(order), worker, "ready", None))
            else:
                served, busy[worker] = served + 1, False
                heapq.heappush(events, (now, next(order), worker, "ready", None))
    return Outcome(served, throttled, end - start)


@pytest.mark.parametrize(
    ("limit", "workers", "requests", "latency", "refused"),
    [
        (RateLimit(30, 2, headers_on_every_response=True), 4, 200, 0.005, 0),
        (RateLimit(40, 2, headers_on_every_response=True), 32, 200, 0.025, 0),
        # GitLab.com: 2,000 authenticated API requests a minute, the sweep at its most.
        (RateLimit(2000, 60, headers_on_every_response=True), 32, 5000, 0.025, 0),
        # More workers than the limit: the first burst goes out before any answer could say
        # so (2 of 32 over 30); after that, never again.
        (RateLimit(30, 2, headers_on_every_response=True), 32, 200, 0.025, 2),
    ],
)
def test_with_headers_on_every_response_no_request_is_throttled(
    limit: RateLimit, workers: int, requests: int, latency: float, refused: int
) -> None:
    outcome = simulate(limit, workers, requests, latency)

    assert (outcome.served, outcome.throttled) == (requests, refused)
    # And not much slower than the limit allows: the windows needed, each perhaps a second
    # late (GitLab's Date has whole seconds, so the time to a reset is rounded up).
    windows = -(-requests // limit.requests)
    assert outcome.seconds <= windows * (limit.period_seconds + 1.0)


@pytest.mark.parametrize("workers", [1, 4, 32])
def test_with_headers_on_the_429_only_every_request_is_served_at_a_few_429s_a_window(
    workers: int,
) -> None:
    limit = RateLimit(30, 2, headers_on_every_response=False)

    outcome = simulate(limit, workers, 200, 0.005)

    assert outcome.served == 200
    windows = -(-200 // limit.requests) + 1
    # Only the requests already on their way when the first 429 came back are refused.
    assert 1 <= outcome.throttled <= workers * windows
