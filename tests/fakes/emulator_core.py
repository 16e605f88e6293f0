"""The emulator's small core: state records, requests, routes, tokens and roles.

GitLab's REST API lives in gitlabhq's lib/api/ (one Grape class per API) on top of
lib/api/helpers.rb (``find_project!``, ``authorize!``, ``not_found!``, ``forbidden!``) and
lib/gitlab/auth/auth_finders.rb (which token a request carries and whether the route takes it).
This module is the emulator's version of those helpers; each API module (projects_api.py,
branches_api.py, tags_api.py, container_repositories_api.py, protection_tag_rules_api.py,
graphql_api.py, registry_tokens.py) declares its routes with :func:`route`, naming the tokens
each one accepts and the gitlabhq line that says so.

Docs pages cited are relative to https://docs.gitlab.com/.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

Version = tuple[int, int]
TokenKind = Literal["personal", "job"]
PERSONAL: frozenset[TokenKind] = frozenset({"personal"})
PERSONAL_OR_JOB: frozenset[TokenKind] = frozenset({"personal", "job"})


class Role(IntEnum):
    """GitLab access levels (lib/gitlab/access.rb; api/members/#roles)."""

    guest = 10
    reporter = 20
    developer = 30
    maintainer = 40
    owner = 50
    admin = 60  # Gitlab::Access.sym_options_with_admin, used by protection tag rules


@dataclass
class Repository:
    """A container repository (app/models/container_repository.rb)."""

    id: int
    project_id: int
    name: str
    path: str
    created_at: str
    # enum status: { delete_scheduled: 0, delete_failed: 1, delete_ongoing: 2 }; nil otherwise.
    status: str | None = None


@dataclass
class TagRule:
    """A protected container tag rule (app/models/container_registry/protection/tag_rule.rb).

    ACCESS_LEVELS are maintainer, owner and admin. A rule with both levels unset is an
    immutable rule (EE); the REST list shows only ``mutable`` rules.
    """

    id: int
    tag_name_pattern: str
    minimum_access_level_for_delete: str | None = "maintainer"
    minimum_access_level_for_push: str | None = "maintainer"

    @property
    def mutable(self) -> bool:
        return (
            self.minimum_access_level_for_delete is not None
            and self.minimum_access_level_for_push is not None
        )


@dataclass
class GitTag:
    """A git tag of the project repository (lib/api/entities/tag.rb)."""

    name: str
    target: str
    created_at: datetime
    message: str | None = None
    protected: bool = False


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str
    branches: list[str] = field(default_factory=list)
    protected_branches: set[str] = field(default_factory=set)
    git_tags: list[GitTag] = field(default_factory=list)
    members: dict[str, Role] = field(default_factory=dict)
    repositories: list[Repository] = field(default_factory=list)
    tag_rules: list[TagRule] = field(default_factory=list)
    # ProjectFeature: repository_access_level "disabled" takes read_code away from everyone
    # (app/policies/project_policy.rb rule { repository_disabled } prevent :read_code).
    repository_enabled: bool = True
    container_registry_enabled: bool = True
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

    @property
    def path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    user: str
    job_project: int | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: object, *, key: str = "message") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # Grape's error! for an unknown route answers {"error": ...}; GitLab's helpers answer
        # {"message": ...} (lib/api/helpers.rb render_api_error!).
        self.key = key


def unauthorized() -> ApiError:
    # lib/api/helpers.rb unauthorized!: render_api_error!('401 Unauthorized', 401)
    return ApiError(401, "401 Unauthorized")


def forbidden(reason: str | None = None) -> ApiError:
    # lib/api/helpers.rb forbidden!(reason): "403 Forbidden" plus " - reason" when given.
    return ApiError(403, f"403 Forbidden - {reason}" if reason else "403 Forbidden")


def not_found(what: str | None = None) -> ApiError:
    # lib/api/helpers.rb not_found!('Project') -> "404 Project Not Found"; bare -> "404 Not found".
    return ApiError(404, f"404 {what} Not Found" if what else "404 Not found")


def no_route() -> ApiError:
    # lib/api/api.rb: route :any, '*path' { error!('404 Not Found', 404) } -> {"error": ...}
    return ApiError(404, "404 Not Found", key="error")


@dataclass
class Request:
    method: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]
    base_url: str
    raw_path: str
    raw_query: str = ""


@dataclass(frozen=True)
class Caller:
    """Who a request acts as once the route's token rules are applied; token None: anonymous."""

    token: Token | None

    @property
    def is_job(self) -> bool:
        return self.token is not None and self.token.kind == "job"


Answer = tuple[int, object, dict[str, str]]
Handler = Callable[["GitLabEmulator", Request, dict[str, str], Caller], Answer]


@dataclass(frozen=True)
class Route:
    """One API route and the tokens it takes.

    ``tokens``: the kinds of token the route accepts. A job token sent to a route that does not
    take it is ignored and the request is anonymous (lib/gitlab/auth/auth_finders.rb
    find_user_from_job_token: ``return unless route_authentication_setting[:job_token_allowed]``).
    ``job_token_since``: the GitLab version from which the route takes job tokens.
    ``job_token_scope_project``: ``job_token_scope: :project`` (container registry routes): a job
    token of another project gets 403 before anything else (lib/api/helpers.rb find_project!).
    ``since``: the GitLab version that introduced the route; older versions answer 404.
    ``source``: the gitlabhq file and setting the route follows.
    """

    method: str
    path: str
    handler: Handler
    tokens: frozenset[TokenKind]
    source: str
    since: Version | None = None
    job_token_since: Version | None = None
    job_token_scope_project: bool = False
    prefix: str = "/api/v4"
    # True where the handler reads the credentials itself (/jwt/auth's HTTP Basic, GraphQL).
    self_authenticating: bool = False

    @property
    def name(self) -> str:
        """The counting key, e.g. ``GET /projects/:id/registry/repositories``."""
        return f"{self.method} {self.path}"

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r":(\w+)", lambda m: f"(?P<{m.group(1)}>[^/]+)", self.path)
        return re.compile(re.escape(self.prefix) + regex if self.prefix else regex)

    def accepts_job_token(self, version: Version) -> bool:
        if "job" not in self.tokens:
            return False
        return self.job_token_since is None or version >= self.job_token_since


def route(
    method: str,
    path: str,
    *,
    tokens: frozenset[TokenKind],
    source: str,
    since: Version | None = None,
    job_token_since: Version | None = None,
    job_token_scope_project: bool = False,
    prefix: str = "/api/v4",
    self_authenticating: bool = False,
) -> Callable[[Handler], Route]:
    """Declare a handler as a route (the emulator's ``route_setting :authentication``)."""

    def declare(handler: Handler) -> Route:
        return Route(
            method,
            path,
            handler,
            tokens,
            source,
            since,
            job_token_since,
            job_token_scope_project,
            prefix,
            self_authenticating,
        )

    return declare


def match(routes: list[Route], request: Request) -> tuple[Route | None, dict[str, str]]:
    # Match the raw path: a project path is one URL-encoded segment (group%2Fapp).
    for candidate in routes:
        if candidate.method != request.method:
            continue
        found = candidate.pattern.fullmatch(request.raw_path.rstrip("/"))
        if found:
            params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
            return candidate, params
    return None, {}


# -- authentication (lib/gitlab/auth/auth_finders.rb) ---------------------------------------


def resolve_caller(
    tokens: dict[str, Token], request: Request, chosen: Route, version: Version
) -> Caller:
    """The caller of ``request`` on ``chosen`` (api/rest/authentication/).

    - ``PRIVATE-TOKEN`` (or ``private_token``): find_personal_access_token; an unknown value,
      a job token among them, raises UnauthorizedError: 401.
    - ``Authorization: Bearer``: find_user_from_job_bearer_token on job token routes, else
      find_user_from_access_token; unknown: 401.
    - ``JOB-TOKEN`` (or ``job_token``): only on routes with job_token_allowed; an unknown value
      there is find_valid_running_job_by_token!: 401. Elsewhere it is ignored: anonymous.
    """
    job_ok = chosen.accepts_job_token(version)
    private = request.headers.get("private-token") or request.query.get("private_token")
    if private is not None:
        token = tokens.get(private)
        if token is None or token.kind != "personal":
            raise unauthorized()
        return Caller(token)
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        token = tokens.get(authorization.removeprefix("Bearer "))
        if token is None or (token.kind == "job" and not job_ok):
            raise unauthorized()
        return Caller(token)
    job = request.headers.get("job-token") or request.query.get("job_token")
    if job is not None and job_ok:
        token = tokens.get(job)
        if token is None or token.kind != "job":
            raise unauthorized()
        return Caller(token)
    return Caller(None)


def authenticate(caller: Caller) -> Token:
    """lib/api/helpers.rb authenticate!: ``unauthorized! unless current_user``."""
    if caller.token is None:
        raise unauthorized()
    return caller.token


# -- authorization (lib/api/helpers.rb find_project!, authorize!) ---------------------------


def find_project(projects: dict[int, Project], project_ref: str) -> Project | None:
    if project_ref.isdigit():
        return projects.get(int(project_ref))
    for project in projects.values():
        if project.path_with_namespace == project_ref:
            return project
    return None


JOB_TOKEN_OTHER_REGISTRY = (
    "This project's CI/CD job token cannot be used to authenticate with the container "
    "registry of a different project."
)


def user_project(
    emulator: GitLabEmulator, chosen: Route, caller: Caller, project_ref: str
) -> tuple[Project, Role]:
    """lib/api/helpers.rb find_project! for the caller; the project and the caller's role.

    Every emulated project is private. In GitLab's order:
    1. ``authorized_project_scope?``: on ``job_token_scope: :project`` routes a job token of
       another project is refused first, with 403 and JOB_TOKEN_OTHER_REGISTRY (spec:
       spec/lib/api/helpers_spec.rb "returns forbidden"), whether or not the project exists.
    2. no such project: "404 Project Not Found".
    3. cannot read_project: a job token (Ci::JobToken::Scope, no allowlist is emulated) gets
       handle_job_token_failure!'s 403 "Authentication by CI/CD job token not allowed from
       SOURCE to TARGET."; anyone else, anonymous included, "404 Project Not Found".
    """
    token = caller.token
    project = find_project(emulator.projects, project_ref)
    other_project = project is None or (token is not None and token.job_project != project.id)
    if caller.is_job and chosen.job_token_scope_project and other_project:
        raise forbidden(JOB_TOKEN_OTHER_REGISTRY)
    if project is None:
        raise not_found("Project")
    if token is not None and token.kind == "job" and token.job_project != project.id:
        source = emulator.projects[token.job_project or 0]
        raise forbidden(
            f"Authentication by CI/CD job token not allowed from {source.path} to {project.path}."
        )
    role = project.members.get(token.user) if token is not None else None
    if role is None:
        raise not_found("Project")
    return project, role


def authorize_read_code(project: Project, role: Role) -> None:
    """``authorize! :read_code, user_project``: Reporter, and the repository feature enabled."""
    if not project.repository_enabled:
        raise forbidden()
    authorize(role, Role.reporter)


def authorize(role: Role, minimum: Role) -> None:
    """lib/api/helpers.rb authorize!: ``forbidden!(reason) unless can?(...)`` -> 403."""
    if role < minimum:
        raise forbidden()


# -- pagination (lib/gitlab/pagination/offset_pagination.rb; api/rest/#pagination) ----------


def paginate(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
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


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
