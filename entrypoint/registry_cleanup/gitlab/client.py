"""One client for one GitLab instance: the session, the token, the errors, GraphQL.

python-gitlab does the REST calls over our rate-limited session (rate_limit.py); GraphQL is
POSTed through the same session. Every resource module (refs, registry, tag_pages, groups,
settings) works on one ``GitLabClient``, so a group sweep's projects share one connection pool
and one rate-limit budget. The token travels in a request header only; it never appears in a
message, an exception or a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import gitlab
import requests

from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.gitlab.rate_limit import RateLimitedSession
from registry_cleanup.pool import MAX_CONCURRENCY

TOKEN_ENV = "GITLAB_TOKEN"  # noqa: S105 (a variable name, not a secret)
JOB_TOKEN_ENV = "CI_JOB_TOKEN"  # noqa: S105
# Names the variable that holds the token, e.g. a masked CI/CD variable SWEEP_TOKEN.
TOKEN_VARIABLE_ENV = "REGISTRY_CLEANUP_TOKEN_VARIABLE"  # noqa: S105
API_URL_ENV = "CI_API_V4_URL"
PROJECT_ENV = "CI_PROJECT_ID"
PER_PAGE = 100  # the largest page GitLab serves (api/rest/#pagination)
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 5


class TokenKind(StrEnum):
    private = "private"  # personal, project or group access token: PRIVATE-TOKEN header
    job = "job"  # CI_JOB_TOKEN: JOB-TOKEN header


class Role(StrEnum):
    """The least role an operation needs (user/permissions/)."""

    guest = "Guest"
    reporter = "Reporter"
    developer = "Developer"
    maintainer = "Maintainer"


@dataclass(frozen=True)
class Credentials:
    kind: TokenKind
    secret: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        """The token named by $REGISTRY_CLEANUP_TOKEN_VARIABLE, else GITLAB_TOKEN, else
        CI_JOB_TOKEN. Tokens come from the environment only, never from arguments."""
        named = env.get(TOKEN_VARIABLE_ENV)
        if named:
            value = env.get(named)
            if not value:
                raise InputError(f"{TOKEN_VARIABLE_ENV} names {named}, which is unset or empty")
            return cls(TokenKind.job if named == JOB_TOKEN_ENV else TokenKind.private, value)
        if env.get(TOKEN_ENV):
            return cls(TokenKind.private, env[TOKEN_ENV])
        if env.get(JOB_TOKEN_ENV):
            return cls(TokenKind.job, env[JOB_TOKEN_ENV])
        raise InputError(
            f"no GitLab token: set {TOKEN_ENV} (an access token) or run in a CI job "
            f"({JOB_TOKEN_ENV})"
        )

    @property
    def variable(self) -> str:
        return TOKEN_ENV if self.kind is TokenKind.private else JOB_TOKEN_ENV


_API_SUFFIX = re.compile(r"/api/v4/?\Z")


def base_url(api_v4_url: str) -> str:
    """python-gitlab wants the instance URL; CI gives CI_API_V4_URL (…/api/v4)."""
    if not api_v4_url.startswith(("http://", "https://")):
        raise InputError(
            f"API URL {api_v4_url!r} must start with http:// or https:// "
            "(e.g. https://gitlab.example.com/api/v4)"
        )
    if _API_SUFFIX.search(api_v4_url) is None:
        raise InputError(
            f"API URL {api_v4_url!r} must end with /api/v4, like CI_API_V4_URL "
            "(e.g. https://gitlab.example.com/api/v4)"
        )
    return _API_SUFFIX.sub("", api_v4_url)


class GitLabApiError(CleanupError):
    """A GitLab API call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(GitLabApiError):
    pass


class GraphQLUnavailable(Exception):
    """GitLab's GraphQL API cannot answer this (absent, disabled, or an older schema)."""


class _Client(gitlab.Gitlab):
    """python-gitlab's client with one retry budget for every request (it defaults to 10)."""

    max_retries = DEFAULT_MAX_RETRIES

    def http_request(
        self,
        verb: str,
        path: str,
        *args: Any,  # noqa: ANN401 (passed through to python-gitlab unchanged)
        **kwargs: Any,  # noqa: ANN401
    ) -> requests.Response:
        kwargs.setdefault("max_retries", self.max_retries)
        return super().http_request(verb, path, *args, **kwargs)


class GitLabClient:
    """One GitLab instance, one token: python-gitlab over our session, and GraphQL."""

    def __init__(
        self,
        api_v4_url: str,
        credentials: Credentials,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.credentials = credentials
        self.url = api_v4_url
        private = credentials.kind is TokenKind.private
        # retry_transient_errors: python-gitlab retries 5xx and dropped connections with
        # backoff, so every call here survives transient failures. 429s never reach it: the
        # session paces by GitLab's RateLimit headers and waits every 429 out (rate_limit.py).
        # One kept-alive connection per worker: requests' default pool holds 10 and would
        # open (and drop) a fresh connection for every call beyond that.
        session = RateLimitedSession()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=MAX_CONCURRENCY)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.gl = _Client(
            base_url(api_v4_url),
            session=session,
            timeout=timeout,
            retry_transient_errors=True,
            per_page=PER_PAGE,
            private_token=credentials.secret if private else None,
            job_token=None if private else credentials.secret,
        )
        self.gl.max_retries = max_retries
        # POSTed with python-gitlab's own session (keep-alive, retries, our rate limiting)
        # rather than gitlab.GraphQL, whose gql and httpx doubled the start-up time.
        self._graphql_url = f"{base_url(api_v4_url)}/api/graphql"
        # GraphQL takes access tokens only (api/graphql/#authentication); with a job token,
        # and after GraphQL once failed to answer, tag metadata comes from REST.
        self.graphql_usable = private

    @property
    def max_retries(self) -> int:
        return int(self.gl.max_retries)

    @contextmanager
    def errors(self, operation: str, role: Role, where: str) -> Iterator[None]:
        """python-gitlab's and requests' errors as one GitLabApiError line: what failed, and
        for a 403 the role it needs ``where`` ("project group/app", "group acme")."""
        try:
            yield
        except gitlab.exceptions.GitlabError as error:
            raise self._translate(operation, role, where, error) from None
        except requests.RequestException as error:
            raise GitLabApiError(
                f"could not {operation}: GitLab could not be reached ({type(error).__name__})"
            ) from None

    def _translate(
        self, operation: str, role: Role, where: str, error: gitlab.exceptions.GitlabError
    ) -> GitLabApiError:
        status = error.response_code
        detail = _message(error.error_message)
        if status == 401:
            if self.credentials.kind is TokenKind.job:
                hint = (
                    f"a CI job token ({JOB_TOKEN_ENV}) cannot use this endpoint or has expired; "
                    f"set {TOKEN_ENV} to an access token with the api scope"
                )
            else:
                hint = f"the token in {TOKEN_ENV} was rejected (expired, revoked or wrong scope)"
            return GitLabApiError(f"could not {operation}: 401 Unauthorized: {hint}", status)
        if status == 403:
            reason = detail.removeprefix("403 Forbidden").strip(" -")
            why = f" ({reason})" if reason else ""
            return GitLabApiError(
                f"could not {operation}: 403 Forbidden{why}: this needs at least the "
                f"{role.value} role in {where}",
                status,
            )
        if status == 404:
            return NotFoundError(f"could not {operation}: {detail or '404 Not Found'}", status)
        return GitLabApiError(f"could not {operation}: HTTP {status}: {detail}", status)

    def graphql(self, operation: str, query: str, variables: Mapping[str, Any], where: str) -> Any:  # noqa: ANN401 (JSON)
        """One GraphQL request; its ``data``. GraphQLUnavailable where REST should decide:
        no GraphQL (404) or a schema without these fields (HTTP 200 with errors, no data)."""
        try:
            with self.errors(operation, Role.reporter, where):
                answer = self.gl.http_post(
                    self._graphql_url, post_data={"query": query, "variables": dict(variables)}
                )
        except GitLabApiError as error:
            if error.status is None or error.status in (401, 403) or error.status >= 500:
                raise  # the same token or outage would fail over REST too
            raise GraphQLUnavailable from None  # 404: no GraphQL here (or it is switched off)
        if not isinstance(answer, dict):
            raise GitLabApiError(f"could not {operation}: GraphQL gave no JSON object")
        data = answer.get("data")
        if answer.get("errors") and not data:
            raise GraphQLUnavailable  # an older schema, or a refusal GraphQL states as error
        return data or {}


def _message(raw: object) -> str:
    if isinstance(raw, dict):
        return "; ".join(f"{key} {', '.join(map(str, value))}" for key, value in raw.items())
    return str(raw)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
