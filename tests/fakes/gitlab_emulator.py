"""A GitLab REST API emulator for exactly the endpoints registry-cleanup uses.

No GitLab server can run here, so this follows GitLab's documentation to the letter where our
client depends on it. Each handler names the page it follows (paths relative to
https://docs.gitlab.com/):

- api/rest/ (authentication headers, status codes, ``{"message": ...}`` error bodies) and
  api/rest/#pagination (offset pagination: ``page``/``per_page`` default 20, max 100;
  ``X-Page``, ``X-Per-Page``, ``X-Total``, ``X-Total-Pages``, ``X-Next-Page``, ``X-Prev-Page``
  and ``Link`` with rel prev/next/first/last).
- api/projects/ (``GET``/``PUT /projects/:id``, ``container_expiration_policy_attributes``).
- api/branches/ (``GET /projects/:id/repository/branches``).
- api/container_registry/ (repositories, tags, tag details, single and bulk tag delete).
- api/container_repository_protection_rules/ and the protected container tags API
  (``GET /projects/:id/registry/protection/tag/rules``).
- ci/jobs/ci_job_token/ (a ``JOB-TOKEN`` reaches the container registry API and the branch
  list of its own project only; other endpoints answer 401 to it).
- user/permissions/ (Reporter reads images and code, Developer deletes one tag, Maintainer
  deletes repositories, bulk-deletes tags and changes project settings).

Registry data lives in the real distribution registry (see registry_store.py). The server
listens on a plain loopback port, so a fault-injecting proxy can sit in front of it, and counts
every request by route.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devkit.local_registry import free_port
from devkit.service import Service
from tests.fakes.registry_store import RegistryStore, TagDeleteFailed
from tests.fakes.registry_tokens import TokenIssuer


class Role(IntEnum):
    """GitLab access levels (api/members/#roles)."""

    guest = 10
    reporter = 20
    developer = 30
    maintainer = 40
    owner = 50


# Cleanup policy allowed values (api/projects/#edit-a-project, container_expiration_policy).
POLICY_CADENCES = ("1d", "7d", "14d", "1month", "3month")
POLICY_KEEP_N = (1, 5, 10, 25, 50, 100)
POLICY_OLDER_THAN = ("7d", "14d", "30d", "90d")
BULK_DELETE_LEASE = timedelta(hours=1)
BULK_DELETE_MESSAGE = (
    "This request has already been made. You can run this at most once an hour for a given "
    "container repository"
)


@dataclass
class Repository:
    id: int
    project_id: int
    name: str
    path: str
    created_at: str
    last_bulk_delete: float | None = None


@dataclass
class TagRule:
    """A protected container tag rule.

    Follows user/packages/container_registry/protected_container_tags/.
    """

    id: int
    tag_name_pattern: str
    minimum_access_level_for_delete: str = "maintainer"
    minimum_access_level_for_push: str = "maintainer"


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str
    branches: list[str] = field(default_factory=list)
    protected_branches: set[str] = field(default_factory=set)
    members: dict[str, Role] = field(default_factory=dict)
    repositories: list[Repository] = field(default_factory=list)
    tag_rules: list[TagRule] = field(default_factory=list)
    policy: dict[str, Any] = field(
        default_factory=lambda: {
            "cadence": "1d",
            "enabled": False,
            "keep_n": 10,
            "older_than": "90d",
            "name_regex": ".*",
            "name_regex_keep": None,
            "next_run_at": None,
        }
    )


@dataclass(frozen=True)
class Token:
    kind: str  # "private" or "job"
    user: str
    job_project: int | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unauthorized() -> ApiError:
    return ApiError(401, "401 Unauthorized")


def _forbidden(reason: str | None = None) -> ApiError:
    return ApiError(403, f"403 Forbidden - {reason}" if reason else "403 Forbidden")


def _not_found(what: str | None = None) -> ApiError:
    # GitLab: not_found!('Project') -> "404 Project Not Found"; a missing record -> "404 Not found".
    return ApiError(404, f"404 {what} Not Found" if what else "404 Not found")


@dataclass
class Request:
    method: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]
    base_url: str
    raw_path: str
    raw_query: str = ""


Handler = Callable[["GitLabEmulator", Request, dict[str, str]], tuple[int, object, dict[str, str]]]


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
        self.tokens: dict[str, Token] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._next_id = 1
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.clock: Callable[[], float] = time.time
        # Answers to give before serving a route normally: route -> statuses, first first.
        self.faults: dict[str, list[int]] = {}
        # Set by enable_registry_tokens(): then /jwt/auth issues registry tokens.
        self.issuer: TokenIssuer | None = None
        # False: /api/graphql answers 404, as where GitLab's GraphQL API is unavailable.
        self.graphql_enabled = True
        # The registry host clients are told about (location), e.g. a proxy in front of it.
        self.registry_host: str | None = None

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

    def add_repository(self, project: Project, name: str = "") -> Repository:
        path = f"{project.path_with_namespace}/{name}" if name else project.path_with_namespace
        repository = Repository(
            id=self._id(),
            project_id=project.id,
            name=name,
            path=path,
            created_at=_iso(datetime.now(UTC)),
        )
        project.repositories.append(repository)
        return repository

    def add_tag_rule(self, project: Project, pattern: str) -> TagRule:
        rule = TagRule(id=self._id(), tag_name_pattern=pattern)
        project.tag_rules.append(rule)
        return rule

    def personal_token(self, project: Project, role: Role, user: str | None = None) -> str:
        user = user or f"user-{secrets.token_hex(3)}"
        project.members[user] = role
        token = f"glpat-{secrets.token_urlsafe(15)}"
        self.tokens[token] = Token(kind="private", user=user)
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
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
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
        route, handler, params = self._route(request)
        with self._lock:
            self.requests[route] += 1
            self.requests["total"] += 1
        extra: dict[str, str] = {}
        with self._lock:
            queued = self.faults.get(route)
            fault = queued.pop(0) if queued else None
        try:
            if fault is not None:
                raise ApiError(fault, f"{fault} {_REASONS.get(fault, 'Error')}")
            if handler is None:
                raise ApiError(404, "404 Not Found")
            status, payload, extra = handler(self, request, params)
        except ApiError as error:
            status, payload = error.status, {"message": error.message}
            if fault is not None:
                # A rate-limited answer says when to come back (api/rest/#status-codes).
                extra = {"Retry-After": "0"} if fault == 429 else {}
        data = b"" if payload is None else json.dumps(payload).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            http.send_header(key, value)
        http.end_headers()
        if http.command != "HEAD":
            http.wfile.write(data)

    def _route(self, request: Request) -> tuple[str, Handler | None, dict[str, str]]:
        # Match the raw path: a project path is one URL-encoded segment (group%2Fapp).
        for method, pattern, name, handler in _ROUTES:
            if method != request.method:
                continue
            match = pattern.fullmatch(request.raw_path.rstrip("/"))
            if match:
                params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return f"{method} {name}", handler, params
        return f"{request.method} unknown", None, {}

    # -- authentication and authorization -------------------------------------------------

    def _caller(self, request: Request) -> Token:
        """api/rest/authentication: PRIVATE-TOKEN, JOB-TOKEN, or Authorization: Bearer."""
        value = request.headers.get("private-token") or request.headers.get("job-token")
        if value is None:
            authorization = request.headers.get("authorization", "")
            if authorization.startswith("Bearer "):
                value = authorization.removeprefix("Bearer ")
        token = self.tokens.get(value or "")
        if token is None:
            raise _unauthorized()
        # A job token works only in the JOB-TOKEN header; access tokens never do.
        sent_as_job_token = request.headers.get("job-token") is not None
        if sent_as_job_token != (token.kind == "job"):
            raise _unauthorized()
        return token

    def _project(
        self, request: Request, project_ref: str, *, job_token_allowed: bool, minimum: Role
    ) -> tuple[Project, Token]:
        token = self._caller(request)
        if token.kind == "job" and not job_token_allowed:
            # ci/jobs/ci_job_token: endpoints outside the job token's list do not accept it.
            raise _unauthorized()
        project = self._find_project(project_ref)
        if project is None:
            raise _not_found("Project")
        if token.kind == "job" and token.job_project != project.id:
            # The container registry API with a job token is scoped to the job's own project.
            raise _not_found("Project")
        role = project.members.get(token.user)
        if role is None:
            # Private project, not a member: GitLab hides it.
            raise _not_found("Project")
        if role < minimum:
            raise _forbidden()
        return project, token

    def _find_project(self, project_ref: str) -> Project | None:
        if project_ref.isdigit():
            return self.projects.get(int(project_ref))
        for project in self.projects.values():
            if project.path_with_namespace == project_ref:
                return project
        return None

    def _granted(self, token: Token, repository_path: str, wanted: list[str]) -> list[str]:
        """The registry actions ``token`` gets on ``repository_path``."""
        for project in self.projects.values():
            prefix = project.path_with_namespace
            if repository_path != prefix and not repository_path.startswith(prefix + "/"):
                continue
            if token.kind == "job" and token.job_project != project.id:
                return []
            role = project.members.get(token.user)
            if role is None:
                return []
            return [a for a in wanted if a in _ACTION_ROLES and role >= _ACTION_ROLES[a]]
        return []

    @staticmethod
    def _repository(project: Project, repository_id: str) -> Repository:
        for repository in project.repositories:
            if str(repository.id) == repository_id:
                return repository
        raise _not_found()

    # -- pagination (api/rest/#pagination) -------------------------------------------------

    @staticmethod
    def _paginate(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        try:
            page = max(int(request.query.get("page", "1")), 1)
            per_page = min(max(int(request.query.get("per_page", "20")), 1), 100)
        except ValueError:
            raise ApiError(400, "400 Bad request - page is invalid") from None
        total = len(items)
        total_pages = max((total + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(to_page: int) -> str:
            query = {**request.query, "page": str(to_page), "per_page": str(per_page)}
            return f"{request.base_url}?{urllib.parse.urlencode(query)}"

        links = []
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(total_pages)}>; rel="last"')
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(total_pages),
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join(links),
        }
        return chunk, headers

    # -- api/projects/ ---------------------------------------------------------------------

    def get_project(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        project, token = self._project(
            request, params["id"], job_token_allowed=False, minimum=Role.guest
        )
        return 200, self._project_json(project, project.members[token.user]), {}

    def _project_json(self, project: Project, role: Role) -> dict[str, Any]:
        name = project.path_with_namespace.rsplit("/", 1)[-1]
        return {
            "id": project.id,
            "name": name,
            "path": name,
            "path_with_namespace": project.path_with_namespace,
            "default_branch": project.default_branch,
            "container_registry_enabled": True,
            "container_registry_image_prefix": (
                f"{self.store.registry.host}/{project.path_with_namespace}"
            ),
            "container_expiration_policy": dict(project.policy),
            "permissions": {"project_access": {"access_level": int(role)}, "group_access": None},
        }

    def put_project(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        # Changing project settings needs the Maintainer role (user/permissions/).
        project, token = self._project(
            request, params["id"], job_token_allowed=False, minimum=Role.maintainer
        )
        attributes = request.body.get("container_expiration_policy_attributes")
        if attributes is None:
            attributes = {
                key[len("container_expiration_policy_attributes[") : -1]: value
                for key, value in request.body.items()
                if key.startswith("container_expiration_policy_attributes[")
            }
        errors = _policy_errors(attributes)
        if errors:
            raise ApiError(400, errors)
        updated = dict(project.policy)
        for key, value in attributes.items():
            if key in ("keep_n",):
                updated[key] = int(value)
            elif key == "enabled":
                updated[key] = value in (True, "true", "1", 1)
            else:
                updated[key] = value
        project.policy = updated
        return 200, self._project_json(project, project.members[token.user]), {}

    # -- api/branches/ ---------------------------------------------------------------------

    def list_branches(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.reporter
        )
        names = sorted(project.branches)
        search = request.query.get("search")
        if search:
            names = [n for n in names if search.lower() in n.lower()]
        chunk, headers = self._paginate(request, names)
        body = [
            {
                "name": name,
                "merged": False,
                "protected": name in project.protected_branches,
                "default": name == project.default_branch,
                "developers_can_push": False,
                "developers_can_merge": False,
                "can_push": True,
                "web_url": f"http://gitlab.example/{project.path_with_namespace}/-/tree/{name}",
                "commit": {"id": "0" * 40, "short_id": "0" * 8, "title": "emulated"},
            }
            for name in chunk
        ]
        return 200, body, headers

    # -- api/container_registry/ -----------------------------------------------------------

    def list_repositories(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.reporter
        )
        chunk, headers = self._paginate(request, list(project.repositories))
        body = []
        for repository in chunk:
            entry: dict[str, Any] = {
                "id": repository.id,
                "name": repository.name,
                "path": repository.path,
                "project_id": project.id,
                "location": self.location(repository),
                "created_at": repository.created_at,
                "cleanup_policy_started_at": None,
            }
            if request.query.get("tags_count") == "true":
                entry["tags_count"] = len(self.store.tags(repository.path))
            if request.query.get("tags") == "true":
                entry["tags"] = [
                    self._tag_json(repository, tag) for tag in self.store.tags(repository.path)
                ]
            body.append(entry)
        return 200, body, headers

    def delete_repository(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        # "Delete registry repository": Maintainer (authorize_admin_container_image), 202,
        # executed asynchronously; the emulator finishes the work before answering.
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.maintainer
        )
        repository = self._repository(project, params["repository_id"])
        for tag in self.store.tags(repository.path):
            self.store.delete_tag(repository.path, tag)
        project.repositories.remove(repository)
        return 202, None, {}

    def _tag_json(self, repository: Repository, tag: str) -> dict[str, Any]:
        return {
            "name": tag,
            "path": f"{repository.path}:{tag}",
            "location": f"{self.location(repository)}:{tag}",
        }

    def list_tags(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.reporter
        )
        repository = self._repository(project, params["repository_id"])
        chunk, headers = self._paginate(request, self.store.tags(repository.path))
        return 200, [self._tag_json(repository, tag) for tag in chunk], headers

    def get_tag(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.reporter
        )
        repository = self._repository(project, params["repository_id"])
        details = self.store.details(repository.path, params["tag_name"])
        if details is None:
            raise _not_found("Tag")
        body = {
            **self._tag_json(repository, details.name),
            "revision": details.digest.removeprefix("sha256:"),
            "short_revision": details.digest.removeprefix("sha256:")[:9],
            "digest": details.digest,
            "created_at": details.created_at,
            "total_size": details.total_size,
        }
        return 200, body, {}

    def delete_tag(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        # "Delete a registry repository tag": Developer (destroy_container_image_tag), 200.
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.developer
        )
        repository = self._repository(project, params["repository_id"])
        tag = params["tag_name"]
        if any(re.fullmatch(rule.tag_name_pattern, tag) for rule in project.tag_rules):
            # Projects::ContainerRepository::Gitlab::DeleteTagsService::PROTECTED_TAGS_ERROR_MESSAGE
            raise _forbidden("cannot delete protected tag(s)")
        # GitLab's DeleteTagsService counts a tag the registry no longer has as deleted.
        try:
            self.store.delete_tag(repository.path, tag)
        except TagDeleteFailed as error:
            # The registry failed the delete: the route's `else bad_request!`.
            raise ApiError(400, "400 Bad Request") from error
        return 200, None, {}

    def bulk_delete(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        """ "Delete registry repository tags in bulk": Maintainer, 202, once an hour.

        Orders tags by creation time, deletes those matching name_regex_delete (or the
        deprecated name_regex) and not name_regex_keep (both anchored), never ``latest``,
        keeps the keep_n newest matching tags and deletes only tags older than older_than.
        GitLab runs this in a background worker; the emulator finishes before answering.
        """
        project, _ = self._project(
            request, params["id"], job_token_allowed=True, minimum=Role.maintainer
        )
        repository = self._repository(project, params["repository_id"])
        options = {**request.body, **request.query}
        delete_regex = options.get("name_regex_delete") or options.get("name_regex")
        if not delete_regex:
            raise ApiError(
                400,
                "name_regex, name_regex_delete are missing, "
                "at least one parameter must be provided",
            )
        now = self.clock()
        last = repository.last_bulk_delete
        if last is not None and now - last < BULK_DELETE_LEASE.total_seconds():
            raise ApiError(400, f"400 Bad request - {BULK_DELETE_MESSAGE}")
        repository.last_bulk_delete = now
        keep_regex = options.get("name_regex_keep")
        matching = []
        for tag in self.store.tags(repository.path):
            if tag == "latest" or not re.fullmatch(delete_regex, tag):
                continue
            if keep_regex and re.fullmatch(keep_regex, tag):
                continue
            details = self.store.details(repository.path, tag)
            if details is not None:
                matching.append(details)
        matching.sort(key=lambda d: d.created_at or "", reverse=True)
        keep_n = int(options.get("keep_n") or 0)
        doomed = matching[keep_n:]
        older_than = options.get("older_than")
        if older_than:
            cutoff = datetime.fromtimestamp(now, UTC) - _duration(older_than)
            doomed = [d for d in doomed if d.created_at and _parse_time(d.created_at) < cutoff]
        for details in doomed:
            self.store.delete_tag(repository.path, details.name)
        return 202, None, {}

    def list_tag_rules(
        self, request: Request, params: dict[str, str]
    ) -> tuple[int, object, dict[str, str]]:
        # Protected container tags API: Maintainer; not on the job token's list.
        project, _ = self._project(
            request, params["id"], job_token_allowed=False, minimum=Role.maintainer
        )
        body = [
            {
                "id": rule.id,
                "project_id": project.id,
                "tag_name_pattern": rule.tag_name_pattern,
                "minimum_access_level_for_push": rule.minimum_access_level_for_push,
                "minimum_access_level_for_delete": rule.minimum_access_level_for_delete,
            }
            for rule in project.tag_rules
        ]
        chunk, headers = self._paginate(request, body)
        return 200, chunk, headers


def _registry_token(
    emulator: GitLabEmulator, request: Request, params: dict[str, str]
) -> tuple[int, object, dict[str, str]]:
    """GET /jwt/auth: GitLab's registry token endpoint.

    Follows Auth::ContainerRegistryAuthenticationService and the registry's token docs.

    HTTP Basic credentials: a user with an access token as password, or ``gitlab-ci-token``
    with a CI job token (user/packages/container_registry/authenticate_with_container_registry).
    Per requested ``scope=repository:PATH:ACTIONS``: pull needs Reporter, push and delete need
    Developer (user/permissions/); a job token reaches its own project only. Actions not
    granted are left out of the token, which is still issued (200); the registry then refuses
    the request with insufficient_scope. Bad credentials: 401.
    """
    issuer = emulator.issuer
    if issuer is None:
        raise ApiError(404, "404 Not Found")
    username, password = _basic(request.headers.get("authorization", ""))
    registry = emulator.store.registry
    admin = (username, password) == (registry.username, registry.password)
    token = emulator.tokens.get(password)
    if not admin and (token is None or (token.kind == "job") != (username == "gitlab-ci-token")):
        return (
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]},
            {"WWW-Authenticate": 'Basic realm="GitLab"'},
        )
    access: list[dict[str, object]] = []
    for scope in urllib.parse.parse_qs(request.raw_query).get("scope", []):
        for item in scope.split(" "):
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if admin:
                granted = wanted
            elif kind == "repository" and token is not None:
                granted = emulator._granted(token, name, wanted)
            else:
                granted = []
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
    subject = username if admin or token is None else token.user
    return 200, {"token": issuer.issue(subject, access)}, {}


def _graphql(
    emulator: GitLabEmulator, request: Request, params: dict[str, str]
) -> tuple[int, object, dict[str, str]]:
    from tests.fakes.graphql_api import answer

    return answer(emulator, request)


def _basic(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    except ValueError:
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


_ACTION_ROLES = {"pull": Role.reporter, "push": Role.developer, "delete": Role.developer}


def _policy_errors(attributes: dict[str, Any]) -> dict[str, list[str]]:
    """Validation of container_expiration_policy_attributes (ContainerExpirationPolicy model)."""
    errors: dict[str, list[str]] = {}
    checks: dict[str, tuple[object, ...]] = {
        "cadence": POLICY_CADENCES,
        "older_than": POLICY_OLDER_THAN,
    }
    for key, allowed in checks.items():
        if key in attributes and attributes[key] not in allowed:
            errors[f"container_expiration_policy.{key}"] = ["is not included in the list"]
    if "keep_n" in attributes:
        try:
            keep_n = int(attributes["keep_n"])
        except (TypeError, ValueError):
            keep_n = -1
        if keep_n not in POLICY_KEEP_N:
            errors["container_expiration_policy.keep_n"] = ["is not included in the list"]
    for key in ("name_regex", "name_regex_keep"):
        value = attributes.get(key)
        if value:
            try:
                re.compile(value)
            except re.error:
                errors[f"container_expiration_policy.{key}"] = ["not valid RE2 syntax"]
    return errors


_DURATION = re.compile(r"(\d+)\s*(months?|min|h|d|w|m|s)")
_UNITS = {
    "s": timedelta(seconds=1),
    "min": timedelta(minutes=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "month": timedelta(days=30),
    "months": timedelta(days=30),
}


def _duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ApiError(400, "older_than is invalid")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _routes() -> list[tuple[str, re.Pattern[str], str, Handler]]:
    project = r"/api/v4/projects/(?P<id>[^/]+)"
    repository = project + r"/registry/repositories/(?P<repository_id>\d+)"
    table: list[tuple[str, str, str, Handler]] = [
        ("GET", project, "/projects/:id", GitLabEmulator.get_project),
        ("PUT", project, "/projects/:id", GitLabEmulator.put_project),
        (
            "GET",
            project + "/repository/branches",
            "/projects/:id/repository/branches",
            GitLabEmulator.list_branches,
        ),
        (
            "GET",
            project + "/registry/repositories",
            "/projects/:id/registry/repositories",
            GitLabEmulator.list_repositories,
        ),
        (
            "DELETE",
            repository,
            "/projects/:id/registry/repositories/:rid",
            GitLabEmulator.delete_repository,
        ),
        (
            "GET",
            repository + "/tags",
            "/projects/:id/registry/repositories/:rid/tags",
            GitLabEmulator.list_tags,
        ),
        (
            "DELETE",
            repository + "/tags",
            "/projects/:id/registry/repositories/:rid/tags",
            GitLabEmulator.bulk_delete,
        ),
        (
            "GET",
            repository + r"/tags/(?P<tag_name>[^/]+)",
            "/projects/:id/registry/repositories/:rid/tags/:tag",
            GitLabEmulator.get_tag,
        ),
        (
            "DELETE",
            repository + r"/tags/(?P<tag_name>[^/]+)",
            "/projects/:id/registry/repositories/:rid/tags/:tag",
            GitLabEmulator.delete_tag,
        ),
        (
            "GET",
            project + "/registry/protection/tag/rules",
            "/projects/:id/registry/protection/tag/rules",
            GitLabEmulator.list_tag_rules,
        ),
        ("GET", "/jwt/auth", "/jwt/auth", _registry_token),
        ("POST", "/api/graphql", "/api/graphql", _graphql),
    ]
    return [
        (method, re.compile(pattern), name, handler) for method, pattern, name, handler in table
    ]


_ROUTES = _routes()
