"""GitLab's authenticated API rate limit (Rack::Attack), switched on by ``emulator.rate_limit``.

What GitLab does, from gitlabhq:

- lib/gitlab/rack_attack.rb configure_throttles: ``throttle_authenticated_api`` counts every
  request ``req.throttle_authenticated_api?`` accepts, keyed by ``req.throttled_identifer([:api])``
  = ``"user:#{id}"``, with ``throttle_authenticated_api_requests_per_period`` per
  ``throttle_authenticated_api_period_in_seconds`` (lib/gitlab/throttle.rb options). Rack::Attack
  counts in fixed windows aligned to the epoch (key ``epoch_time / period``) and throttles a
  request once the window's count, this request included, exceeds the limit; the throttled
  requests are counted too.
- lib/gitlab/rack_attack/request.rb throttle_authenticated_api?: ``api_request?`` is
  ``logical_path.start_with?('/api')``, so ``POST /api/graphql`` counts as much as REST under
  /api/v4; excluded are the packages API, the files API (/projects/:id/repository/files/…),
  and the deprecated ``GET /groups/:id`` with projects (their own throttles, not modelled).
  The requester is found as lib/gitlab/auth/request_authenticator.rb finds it for the ``:api``
  format: access tokens and, on any /api path, CI job tokens (the job's user). So all tokens of
  one user share one budget. Unauthenticated requests fall under the per-IP throttle instead
  (not modelled: every request we send is authenticated).
- The 429 (lib/gitlab/rack_attack.rb throttled_responder): ``Content-Type: text/plain``, body
  ``Gitlab::Throttle.rate_limiting_response_text`` ("Retry later\\n" unless the administrator
  set one), and lib/gitlab/rack_attack/request_throttle_data.rb throttled_response_headers:
  RateLimit-Name (the throttle), RateLimit-Limit (the limit per 60 seconds, rounded up: not the
  limit of the window), RateLimit-Observed, RateLimit-Remaining, RateLimit-Reset (Unix time of
  the window's end), RateLimit-ResetTime (the same as an HTTP date) and Retry-After (whole
  seconds to the window's end, 1..period).
- Ordinary responses: lib/gitlab/middleware/rack_attack_headers.rb adds the common headers
  (the list above without Retry-After and RateLimit-ResetTime) to every response that is not a
  429, behind the feature flag ``rate_limiting_headers_for_unthrottled_requests`` (18.6,
  default off: config/feature_flags/gitlab_com_derisk/). doc/user/gitlab_com/rate_limits.md
  says all GitLab.com responses carry them. Self-managed instances do not, by default: there
  a client learns of the limit only from its first 429. Both are modelled
  (``headers_on_every_response``); the default is the worse one, headers on the 429 only.

Not modelled: Gitlab::ApplicationRateLimiter limits of single endpoints (e.g. GET
/projects/:id on GitLab.com), whose 429 (lib/api/helpers/rate_limiter.rb) carries no headers
at all; the client must back off from those blind.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from email.utils import formatdate

from tests.fakes.emulator_core import Request, Token

THROTTLE_NAME = "throttle_authenticated_api"
# Gitlab::Throttle::DEFAULT_RATE_LIMITING_RESPONSE_TEXT and the newline that
# rate_limiting_response_text adds.
RESPONSE_TEXT = "Retry later\n"

# Paths this throttle skips (lib/gitlab/rack_attack/request.rb): should_be_skipped?, and the
# files and deprecated APIs, which have throttles of their own. (The packages API has one too;
# the emulator serves none of it.)
_SKIPPED = re.compile(r"^/api/v\d+/(internal|container_registry_event)/")
_FILES = re.compile(r"^/api/v\d+/projects/[^/]+/repository/files/.+")  # FILES_PATH_REGEX
_GROUP = re.compile(r"^/api/v\d+/groups/[^/]+/?$")  # GROUP_PATH_REGEX
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})  # Gitlab::Utils.to_boolean


@dataclass(frozen=True)
class RateLimit:
    """The Admin area's authenticated API rate limit, as on GitLab.com (2,000 per 60 s)."""

    requests: int  # throttle_authenticated_api_requests_per_period
    period_seconds: int  # throttle_authenticated_api_period_in_seconds
    # The rate_limiting_headers_for_unthrottled_requests feature flag (on at GitLab.com).
    headers_on_every_response: bool = False


@dataclass(frozen=True)
class Verdict:
    throttled: bool
    headers: dict[str, str]


def counted(request: Request) -> bool:
    """throttle_authenticated_api? without the requester: which paths this throttle counts."""
    path = request.raw_path
    if not path.startswith("/api") or _SKIPPED.match(path) or _FILES.match(path):
        return False
    # deprecated_api_request?: /groups/:id with its projects (with_projects blank means true).
    with_projects = request.query.get("with_projects", "").lower() or "true"
    return not (_GROUP.match(path) and with_projects in _TRUE)


def requester(tokens: dict[str, Token], request: Request) -> str | None:
    """throttled_identifer([:api]): the user behind any token we know, however it was sent."""
    candidates = (
        request.headers.get("private-token"),
        request.query.get("private_token"),
        request.headers.get("authorization", "").removeprefix("Bearer ") or None,
        request.headers.get("job-token"),
        request.query.get("job_token"),
    )
    for value in candidates:
        token = tokens.get(value) if value else None
        if token is not None:
            return f"user:{token.user}"
    return None


class Throttle:
    """Rack::Attack's fixed-window counter for one throttle, one count per discriminator."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def check(self, discriminator: str, now: float) -> Verdict:
        epoch = int(now)  # Rack::Attack's epoch_time: whole seconds
        period = self.limit.period_seconds
        window = epoch // period
        with self._lock:
            count = self._counts.get((discriminator, window), 0) + 1
            self._counts[(discriminator, window)] = count
        throttled = count > self.limit.requests
        retry_after = period - epoch % period
        reset = epoch + retry_after
        headers = {
            "RateLimit-Name": THROTTLE_NAME,
            "RateLimit-Limit": str(-(-self.limit.requests * 60 // period)),  # per 60 s, rounded up
            "RateLimit-Observed": str(count),
            "RateLimit-Remaining": str(max(self.limit.requests - count, 0)),
            "RateLimit-Reset": str(reset),
        }
        if throttled:
            headers["RateLimit-ResetTime"] = formatdate(reset, usegmt=True)
            headers["Retry-After"] = str(retry_after)
        elif not self.limit.headers_on_every_response:
            headers = {}
        return Verdict(throttled, headers)
