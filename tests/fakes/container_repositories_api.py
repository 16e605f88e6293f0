"""lib/api/project_container_repositories.rb: the project container registry API.

api/container_registry/. The whole resource has
``route_setting :authentication, job_token_allowed: true, job_token_scope: :project``: every
route takes a job token, of the job's own project only (another project: 403, see
emulator_core.user_project). ``before { authorize_read_container_images! }``: Reporter.
Registry data lives in the real distribution registry (registry_store.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tests.fakes.emulator_core import (
    PERSONAL_OR_JOB,
    Answer,
    ApiError,
    Caller,
    Project,
    Repository,
    Request,
    Role,
    Route,
    authorize,
    forbidden,
    not_found,
    paginate,
    parse_time,
    route,
    user_project,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

SOURCE = (
    "lib/api/project_container_repositories.rb route_setting :authentication, "
    "job_token_allowed: true, job_token_scope: :project"
)
BULK_DELETE_LEASE = timedelta(hours=1)
BULK_DELETE_MESSAGE = (
    "This request has already been made. You can run this at most once an hour for a given "
    "container repository"
)
# Projects::ContainerRepository::Gitlab::DeleteTagsService::PROTECTED_TAGS_ERROR_MESSAGE
PROTECTED_TAGS_ERROR_MESSAGE = "cannot delete protected tag(s)"


def _registry_route(method: str, path: str) -> Any:
    return route(method, path, tokens=PERSONAL_OR_JOB, job_token_scope_project=True, source=SOURCE)


def _project(
    emulator: GitLabEmulator, chosen: Route, caller: Caller, params: dict[str, str]
) -> tuple[Project, Role]:
    project, role = user_project(emulator, chosen, caller, params["id"])
    authorize(role, Role.reporter)  # authorize_read_container_images!
    return project, role


def _repository(project: Project, repository_id: str) -> Repository:
    # user_project.container_repositories.find(id): ActiveRecord::RecordNotFound -> 404 Not found
    for repository in project.repositories:
        if str(repository.id) == repository_id:
            return repository
    raise not_found()


def tag_json(emulator: GitLabEmulator, repository: Repository, tag: str) -> dict[str, Any]:
    """Entities::ContainerRegistry::Tag (lib/api/entities/container_registry.rb)."""
    return {
        "name": tag,
        "path": f"{repository.path}:{tag}",
        "location": f"{emulator.location(repository)}:{tag}",
    }


def _list_repositories(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    project, _ = _project(emulator, LIST_REPOSITORIES, caller, params)
    chunk, headers = paginate(request, list(project.repositories))
    body = []
    for repository in chunk:
        entry: dict[str, Any] = {
            "id": repository.id,
            "name": repository.name,
            "path": repository.path,
            "project_id": project.id,
            "location": emulator.location(repository),
            "created_at": repository.created_at,
            "cleanup_policy_started_at": None,
            "status": repository.status,
        }
        if request.query.get("tags_count") == "true":
            entry["tags_count"] = len(emulator.store.tags(repository.path))
        if request.query.get("tags") == "true":
            entry["tags"] = [
                tag_json(emulator, repository, tag) for tag in emulator.store.tags(repository.path)
            ]
        body.append(entry)
    return 200, body, headers


LIST_REPOSITORIES = _registry_route("GET", "/projects/:id/registry/repositories")(
    _list_repositories
)


def _delete_repository(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    # authorize_admin_container_image!: Maintainer. 202, executed asynchronously.
    project, role = _project(emulator, DELETE_REPOSITORY, caller, params)
    authorize(role, Role.maintainer)
    repository = _repository(project, params["rid"])
    for tag in emulator.store.tags(repository.path):
        emulator.store.delete_tag(repository.path, tag)
    project.repositories.remove(repository)
    return 202, None, {}


DELETE_REPOSITORY = _registry_route("DELETE", "/projects/:id/registry/repositories/:rid")(
    _delete_repository
)


def _list_tags(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    project, _ = _project(emulator, LIST_TAGS, caller, params)
    repository = _repository(project, params["rid"])
    chunk, headers = paginate(request, emulator.store.tags(repository.path))
    return 200, [tag_json(emulator, repository, tag) for tag in chunk], headers


LIST_TAGS = _registry_route("GET", "/projects/:id/registry/repositories/:rid/tags")(_list_tags)


def _get_tag(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    project, _ = _project(emulator, GET_TAG, caller, params)
    repository = _repository(project, params["rid"])
    details = emulator.store.details(repository.path, params["tag"])
    if details is None:
        raise not_found("Tag")
    body = {
        **tag_json(emulator, repository, details.name),
        "revision": details.digest.removeprefix("sha256:"),
        "short_revision": details.digest.removeprefix("sha256:")[:9],
        "digest": details.digest,
        "created_at": details.created_at,
        "total_size": details.total_size,
    }
    return 200, body, {}


GET_TAG = _registry_route("GET", "/projects/:id/registry/repositories/:rid/tags/:tag")(_get_tag)


def _delete_tag(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    # authorize_destroy_container_image_tag!: Developer. 200.
    project, role = _project(emulator, DELETE_TAG, caller, params)
    authorize(role, Role.developer)
    repository = _repository(project, params["rid"])
    tag = params["tag"]
    if any(re.fullmatch(rule.tag_name_pattern, tag) for rule in project.tag_rules):
        raise forbidden(PROTECTED_TAGS_ERROR_MESSAGE)
    emulator.store.delete_tag(repository.path, tag)
    return 200, None, {}


DELETE_TAG = _registry_route("DELETE", "/projects/:id/registry/repositories/:rid/tags/:tag")(
    _delete_tag
)


def _bulk_delete(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    """ "Delete registry repository tags in bulk": Maintainer, 202, once an hour."""
    project, role = _project(emulator, BULK_DELETE, caller, params)
    authorize(role, Role.maintainer)
    repository = _repository(project, params["rid"])
    options = {**request.body, **request.query}
    delete_regex = options.get("name_regex_delete") or options.get("name_regex")
    if not delete_regex:
        raise ApiError(
            400,
            "name_regex, name_regex_delete are missing, at least one parameter must be provided",
            key="error",
        )
    now = emulator.clock()
    last = emulator.bulk_delete_leases.get(repository.id)
    if last is not None and now - last < BULK_DELETE_LEASE.total_seconds():
        raise ApiError(400, f"400 Bad request - {BULK_DELETE_MESSAGE}")
    emulator.bulk_delete_leases[repository.id] = now
    keep_regex = options.get("name_regex_keep")
    matching = []
    for tag in emulator.store.tags(repository.path):
        if tag == "latest" or not re.fullmatch(delete_regex, tag):
            continue
        if keep_regex and re.fullmatch(keep_regex, tag):
            continue
        details = emulator.store.details(repository.path, tag)
        if details is not None:
            matching.append(details)
    matching.sort(key=lambda d: d.created_at or "", reverse=True)
    keep_n = int(options.get("keep_n") or 0)
    doomed = matching[keep_n:]
    older_than = options.get("older_than")
    if older_than:
        cutoff = datetime.fromtimestamp(now, UTC) - duration(older_than)
        doomed = [d for d in doomed if d.created_at and parse_time(d.created_at) < cutoff]
    for details in doomed:
        emulator.store.delete_tag(repository.path, details.name)
    return 202, None, {}


BULK_DELETE = _registry_route("DELETE", "/projects/:id/registry/repositories/:rid/tags")(
    _bulk_delete
)

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


def duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ApiError(400, "older_than is invalid")
    return int(match.group(1)) * _UNITS[match.group(2)]


ROUTES: list[Route] = [
    LIST_REPOSITORIES,
    DELETE_REPOSITORY,
    LIST_TAGS,
    BULK_DELETE,
    GET_TAG,
    DELETE_TAG,
]
