"""A GitLab API emulator for exactly the endpoints registry-cleanup uses, read from gitlabhq.

No GitLab server can run here, so the emulator follows GitLab's source (gitlabhq) and the docs
page next to it (paths relative to https://docs.gitlab.com/). Like GitLab's lib/api/ it is one
module per API, each route declaring the tokens it takes (emulator_core.route):

- projects_api.py: lib/api/projects.rb (GET/PUT /projects/:id)
- branches_api.py: lib/api/branches.rb (GET /projects/:id/repository/branches)
- tags_api.py: lib/api/tags.rb (GET /projects/:id/repository/tags, git tags)
- container_repositories_api.py: lib/api/project_container_repositories.rb
- protection_tag_rules_api.py: lib/api/project_container_registry_protection_tag_rules.rb
- graphql_api.py: app/controllers/graphql_controller.rb and app/graphql/
- registry_tokens.py: /jwt/auth (app/controllers/jwt_controller.rb)
- rate_limits.py: the authenticated API rate limit in front of them all (lib/gitlab/rack_attack.rb)

This module holds the state, the set-up helpers tests call, and the HTTP server. The emulated
GitLab has a version (``version``, default the newest we read) and, like GitLab.com, the
registry metadata database (``metadata_database``): both change what some routes answer.
Registry data lives in the real distribution registry (registry_store.py). The server listens
on a plain loopback port, so a fault-injecting proxy can sit in front of it, and counts every
request by route.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devkit.local_registry import free_port
from devkit.service import Service
from tests.fakes import (
    branches_api,
    container_repositories_api,
    graphql_api,
    groups_api,
    projects_api,
    protection_tag_rules_api,
    rate_limits,
    registry_tokens,
    tags_api,
)
from tests.fakes.emulator_core import (
    ApiError,
    Caller,
    GitTag,
    Project,
    Repository,
    Request,
    Role,
    Route,
    TagRule,
    Token,
    Version,
    iso,
    match,
    no_route,
    resolve_caller,
)
from tests.fakes.rate_limits import RateLimit, Throttle
from tests.fakes.registry_store import RegistryStore
from tests.fakes.registry_tokens import TokenIssuer

__all__ = ["GitLabEmulator", "Project", "RateLimit", "Repository", "Role", "TagRule", "Token"]

# The newest GitLab version whose source the emulator follows.
LATEST: Version = (18, 10)

ROUTES: list[Route] = [
    *projects_api.ROUTES,
    *branches_api.ROUTES,
    *tags_api.ROUTES,
    *container_repositories_api.ROUTES,
    *groups_api.ROUTES,
    *protection_tag_rules_api.ROUTES,
    *registry_tokens.ROUTES,
    *graphql_api.ROUTES,
]

_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # Clients (regctl, requests) close idle keep-alive connections; that is not an error.
        return


class GitLabEmulator(Service):
    """The emulator's state plus the HTTP server in a background thread."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store
        self.projects: dict[int, Project] = {}
        self.groups: dict[int, groups_api.Group] = {}
        self.tokens: dict[str, Token] = {}
        self.requests: Counter[str] = Counter()
        # POST /api/graphql by the root field asked for (containerRepository for tag pages,
        # destroyContainerRepositoryTags for deletions).
        self.graphql_fields: Counter[str] = Counter()
        # ContainerRepositoryDetails.tags pages served, by the sort asked for (NAME_ASC when
        # none): the sweep reads from both ends.
        self.tag_sorts: Counter[str] = Counter()
        # True: every tag page comes in NAME_ASC order whatever sort was asked for. No GitLab
        # we read does this (container_repository_tags_resolver.rb honours NAME_DESC with and
        # without the metadata database); it is the assumption the sweep's two-ended read
        # checks rather than trusts.
        self.tag_sort_ignored = False
        # Tags whose manifest GitLab cannot read just now: GraphQL's ContainerRepositoryTag
        # digest is then null (app/models/container_registry/tag.rb: #digest comes from the
        # manifest request's Docker-Content-Digest; types/container_registry/
        # container_repository_tag_type.rb declares the field nullable).
        self.unreadable_digests: set[str] = set()
        self._lock = threading.Lock()
        self._next_id = 1
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.clock: Callable[[], float] = time.time
        # The emulated GitLab version: routes introduced later answer 404, job tokens are
        # taken only where that version takes them.
        self.version: Version = LATEST
        # Whether the registry has GitLab's metadata database. True is GitLab.com: GitLab reads
        # tags through the registry's GitLab API (push times as created_at, GraphQL tag pages
        # cut by the registry so that first > 20 skips tags, a tag lookup that finds nothing
        # for a vanished tag: 403). False, the default, is a registry without it (opt-in on
        # self-managed: administration/packages/container_registry_metadata_database/):
        # created_at is the image config's ``created``, which can be far older than the push,
        # so a --min-age grace period protects less. Neither reading is safe alone: behaviour
        # that differs is tested both ways (tests/integration/test_emulator_*.py).
        self.metadata_database = False
        # Gitlab::ExclusiveLease "container_repository:cleanup_tags:#{id}": time obtained.
        self.bulk_delete_leases: dict[int, float] = {}
        # Answers to give before serving a route normally: route -> statuses, first first.
        # Per route, what happens to its next requests, in order: an HTTP status to answer
        # instead, None to answer normally, or a callable run first (the world moving on
        # between two requests of a run: a pipeline pushing, say), then answered normally.
        self.faults: dict[str, list[int | Callable[[], object] | None]] = {}
        # Per route, what happens right after its next answers were made and before they are
        # sent, in order: a callable (the world moving on at that exact moment: "right after
        # the branch list was answered"), or None for an answer that moves nothing. The client
        # sees the answer only once the callable returned, so nothing it does next can come
        # before it.
        self.after_answer: dict[str, list[Callable[[], object] | None]] = {}
        # Set by enable_registry_tokens(): then /jwt/auth issues registry tokens.
        self.issuer: TokenIssuer | None = None
        # False: /api/graphql answers 404, as where GitLab's GraphQL API is unavailable.
        self.graphql_enabled = True
        # The registry host clients are told about (location), e.g. a proxy in front of it.
        self.registry_host: str | None = None
        # The authenticated API rate limit (rate_limits.py); None, the default: no limit.
        self._throttle: Throttle | None = None
        # How many requests the rate limit answered with 429.
        self.throttled = 0

    @property
    def rate_limit(self) -> RateLimit | None:
        return None if self._throttle is None else self._throttle.limit

    @rate_limit.setter
    def rate_limit(self, limit: RateLimit | None) -> None:
        self._throttle = None if limit is None else Throttle(limit)

    # -- set-up helpers for tests ---------------------------------------------------------

    @property
    def url(self) -> str:
        """What GitLab puts in CI_API_V4_URL."""
        return f"http://127.0.0.1:{self.port}/api/v4"

    def _id(self) -> int:
        with self._lock:
            value = self._next_id
            self._next_id += 1
            return value

    def add_project(
        self, path_with_namespace: str, *, default_branch: str = "main", branches: list[str]
    ) -> Project:
        project = Project(
            id=self._id(),
            path_with_namespace=path_with_namespace,
            default_branch=default_branch,
            branches=list(branches),
        )
        self.projects[project.id] = project
        return project

    def add_git_tag(
        self,
        project: Project,
        name: str,
        *,
        created_at: datetime | None = None,
        message: str | None = None,
        protected: bool = False,
    ) -> GitTag:
        """A git tag in the project's repository, as GET /projects/:id/repository/tags lists."""
        tag = GitTag(
            name=name,
            target=secrets.token_hex(20),
            created_at=created_at or datetime.now(UTC),
            message=message,
            protected=protected,
        )
        project.git_tags.append(tag)
        return tag

    def add_repository(self, project: Project, name: str = "") -> Repository:
        path = f"{project.path_with_namespace}/{name}" if name else project.path_with_namespace
        repository = Repository(
            id=self._id(),
            project_id=project.id,
            name=name,
            path=path,
            created_at=iso(datetime.now(UTC)),
        )
        project.repositories.append(repository)
        return repository

    def add_tag_rule(
        self,
        project: Project,
        pattern: str,
        *,
        minimum_access_level_for_delete: str | None = "maintainer",
        minimum_access_level_for_push: str | None = "maintainer",
    ) -> TagRule:
        rule = TagRule(
            id=self._id(),
            tag_name_pattern=pattern,
            minimum_access_level_for_delete=minimum_access_level_for_delete,
            minimum_access_level_for_push=minimum_access_level_for_push,
        )
        project.tag_rules.append(rule)
        return rule

    def personal_token(self, project: Project, role: Role, user: str | None = None) -> str:
        user = user or f"user-{secrets.token_hex(3)}"
        project.members[user] = role
        token = f"glpat-{secrets.token_urlsafe(15)}"
        self.tokens[token] = Token(kind="personal", user=user)
        return token

    def add_group(self, full_path: str) -> groups_api.Group:
        """A private group (or subgroup: ``parent/child``); projects join it by their path."""
        group = groups_api.Group(id=self._id(), full_path=full_path)
        self.groups[group.id] = group
        return group

    def group_token(self, group: groups_api.Group, role: Role) -> str:
        """A group access token: a bot user, member of the group with ``role``, and so of every
        project and subgroup below it (membership is inherited)."""
        user = f"group_{group.id}_bot_{secrets.token_hex(3)}"
        group.members[user] = role
        for project in self.projects.values():
            if group.contains(project):
                project.members[user] = max(role, project.members.get(user, role))
        token = f"glpat-{secrets.token_urlsafe(15)}"
        self.tokens[token] = Token(kind="personal", user=user)
        return token

    def job_token(self, project: Project, role: Role) -> str:
        """A CI_JOB_TOKEN: the role of the pipeline's user, scoped to the job's project."""
        user = f"pipeline-user-{secrets.token_hex(3)}"
        project.members[user] = role
        token = f"glcbt-{secrets.token_urlsafe(15)}"
        self.tokens[token] = Token(kind="job", user=user, job_project=project.id)
        return token

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwt/auth"

    def enable_registry_tokens(self, directory: Path) -> dict[str, object]:
        """Issue registry tokens at /jwt/auth; returns the registry's ``auth`` section."""
        self.issuer = TokenIssuer()
        return self.issuer.auth_config(self.realm, directory)

    def location(self, repository: Repository) -> str:
        return f"{self.registry_host or self.store.registry.host}/{repository.path}"

    def run_scheduled_deletions(self) -> int:
        """Run DeleteContainerRepositoryWorker: repositories scheduled for deletion go."""
        return container_repositories_api.run_scheduled_deletions(self)

    def count(self, route: str) -> int:
        return self.requests[route]

    # -- lifetime -------------------------------------------------------------------------

    def start(self) -> GitLabEmulator:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _serve(self) -> None:
                emulator._handle(self)

            do_GET = do_PUT = do_DELETE = do_POST = do_HEAD = _serve

        self._server = _QuietServer(("127.0.0.1", self.port), _Handler)
        self._server.daemon_threads = True
        # stop()'s shutdown() waits for the loop to look at its flag, which it does once per
        # poll interval: the default 0.5 s made every test's teardown wait 0.25 s on average.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- HTTP plumbing --------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw_body = http.rfile.read(length) if length else b""
        body: dict[str, Any] = {}
        content_type = http.headers.get("Content-Type", "")
        if raw_body and "json" in content_type:
            body = json.loads(raw_body)
        elif raw_body:
            body = dict(urllib.parse.parse_qsl(raw_body.decode()))
        request = Request(
            method=http.command,
            query=dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
            body=body,
            headers={k.lower(): v for k, v in http.headers.items()},
            base_url=f"http://127.0.0.1:{self.port}{parsed.path}",
            raw_path=parsed.path,
            raw_query=parsed.query,
        )
        chosen, params = match(ROUTES, request)
        name = chosen.name if chosen is not None else f"{request.method} unknown"
        with self._lock:
            self.requests[name] += 1
            self.requests["total"] += 1
        # Rack::Attack runs before any route (and before the faults, which stand for trouble
        # behind it): a throttled request never reaches one.
        extra = self._rate_limit_headers(http, request)
        if extra is None:
            return
        with self._lock:
            queued = self.faults.get(name)
            fault = queued.pop(0) if queued else None
        if callable(fault):
            fault()
            fault = None
        try:
            if fault is not None:
                raise ApiError(fault, f"{fault} {_REASONS.get(fault, 'Error')}")
            if chosen is None or (chosen.since is not None and self.version < chosen.since):
                raise no_route()
            caller = (
                Caller(None)
                if chosen.self_authenticating
                else resolve_caller(self.tokens, request, chosen, self.version)
            )
            status, payload, answered = chosen.handler(self, request, params, caller)
            extra |= answered
            with self._lock:
                waiting = self.after_answer.get(name)
                moved = waiting.pop(0) if waiting else None
            if moved is not None:
                moved()
        except ApiError as error:
            status, payload = error.status, {error.key: error.message}
            if fault is not None:
                # A rate-limited answer says when to come back (api/rest/#status-codes).
                extra |= {"Retry-After": "0"} if fault == 429 else {}
        data = b"" if payload is None else json.dumps(payload).encode()
        self._send(http, status, "application/json", data, extra)

    def _rate_limit_headers(
        self, http: BaseHTTPRequestHandler, request: Request
    ) -> dict[str, str] | None:
        """The rate limit's headers for an ordinary answer, or None when it answered 429."""
        throttle = self._throttle
        if throttle is None or not rate_limits.counted(request):
            return {}
        user = rate_limits.requester(self.tokens, request)
        if user is None:
            return {}
        verdict = throttle.check(user, self.clock())
        if not verdict.throttled:
            return verdict.headers
        with self._lock:
            self.throttled += 1
        data = rate_limits.RESPONSE_TEXT.encode()
        self._send(http, 429, "text/plain", data, verdict.headers)
        return None

    @staticmethod
    def _send(
        http: BaseHTTPRequestHandler,
        status: int,
        content_type: str,
        data: bytes,
        headers: dict[str, str],
    ) -> None:
        http.send_response(status)
        http.send_header("Content-Type", content_type)
        http.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            http.send_header(key, value)
        http.end_headers()
        if http.command != "HEAD":
            http.wfile.write(data)
