"""lib/api/project_container_repositories.rb: the project container registry API.

api/container_registry/. The whole resource has
``route_setting :authentication, job_token_allowed: true, job_token_scope: :project``: every
route takes a job token, of the job's own project only (another project: 403, see
emulator_core.user_project). ``before { authorize_read_container_images! }``: Reporter.
Registry data lives in the real distribution registry (registry_store.py).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import re2

from devkit.local_registry import MANIFEST_ACCEPT
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
    iso,
    not_found,
    paginate,
    parse_time,
    route,
    user_project,
)
from tests.fakes.registry_metadata import pushed_at
from tests.fakes.registry_store import TagDeleteFailed

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
    """``delete ':id/registry/repositories/:repository_id'``: schedule, answer 202.

    authorize_admin_container_image!: Maintainer. Then ``repository.delete_scheduled!`` and
    ``status :accepted``: the repository stays listed with ``status: "delete_scheduled"`` (and
    its tags) until ContainerRegistry::DeleteContainerRepositoryWorker picks it up, which the
    emulator does only when a test calls ``run_scheduled_deletions()``: the reading where a
    client sees the repository longest.
    """
    project, role = _project(emulator, DELETE_REPOSITORY, caller, params)
    authorize(role, Role.maintainer)
    repository = _repository(project, params["rid"])
    repository.status = "delete_scheduled"
    return 202, None, {}


def run_scheduled_deletions(emulator: GitLabEmulator) -> int:
    """What DeleteContainerRepositoryWorker does: delete every tag, then the record."""
    done = 0
    for project in emulator.projects.values():
        for repository in list(project.repositories):
            if repository.status != "delete_scheduled":
                continue
            for tag in emulator.store.tags(repository.path):
                emulator.store.delete_tag(repository.path, tag)
            project.repositories.remove(repository)
            done += 1
    return done


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
    """``get '.../tags/:tag_name'``: Entities::ContainerRegistry::TagDetails.

    authorize_read_container_image!, then ``validate_tag!``: ``not_found!('Tag') unless
    tag&.valid?`` -> "404 Tag Not Found". Fields (app/models/container_registry/tag.rb):
    ``revision`` is the hex of the image's *config* digest (Blob#revision), ``short_revision``
    its first 9 characters (``revision[0..8]``), ``digest`` the manifest digest.
    With the metadata database (ContainerRepository#tag -> tags_page, transform_tags_page):
    ``created_at`` is the push time recorded by the registry and ``total_size`` the registry's
    size_bytes (emulated as config plus layers: gitlabhq does not say what size_bytes counts).
    Without it: ``created_at`` is the config's ``created``, ``total_size`` the sum of the layers
    only (``layers.sum(&:size) if v2?``), and for an image index, which has no ``layers``,
    Tag#layers calls ``nil.map``: 500.
    """
    project, _ = _project(emulator, GET_TAG, caller, params)
    repository = _repository(project, params["rid"])
    name = params["tag"]
    if not emulator.metadata_database:
        return 200, _tag_details_read_from_registry(emulator, repository, name), {}
    manifest = _manifest(emulator, repository, name)
    if manifest is None:
        raise not_found("Tag")
    digest, body = manifest
    image = body
    if _is_index(body):
        first = _manifest(emulator, repository, body["manifests"][0]["digest"])
        if first is None:
            raise not_found("Tag")
        image = first[1]
    config_digest = image["config"]["digest"]
    revision = config_digest.removeprefix("sha256:")
    layers = sum(layer["size"] for layer in image.get("layers", []))
    pushed = pushed_at(emulator.store.registry, repository.path, name)
    answer = {
        **tag_json(emulator, repository, name),
        "revision": revision,
        "short_revision": revision[:9],
        "digest": digest,
        "created_at": iso(pushed) if pushed is not None else None,
        "total_size": layers + image["config"]["size"],
    }
    return 200, answer, {}


def _tag_details_read_from_registry(
    emulator: GitLabEmulator, repository: Repository, name: str
) -> dict[str, Any]:
    """TagDetails without the metadata database: ContainerRegistry::Tag.new reads the
    manifest asking for single-platform manifests only (base_client.rb ACCEPTED_TYPES;
    registry_store.GITLAB_ACCEPTED_TYPES). A registry that answers 404 (distribution 2.x for
    an OCI index) makes ``valid?`` false: "404 Tag Not Found". A registry that serves the
    index anyway (distribution v3) leaves Tag#layers with ``nil.map`` (lib/container_registry/
    tag.rb ``manifest['layers'] || manifest['fsLayers']``): an unhandled NoMethodError, which
    lib/api/api.rb ``rescue_from :all`` renders as {"message": "500 Internal Server Error"}."""
    read = emulator.store.details(repository.path, name)
    if read is None:
        raise not_found("Tag")
    if read.index:
        raise ApiError(500, "500 Internal Server Error")
    manifest = _manifest(emulator, repository, read.digest)
    if manifest is None:
        raise not_found("Tag")
    image = manifest[1]
    revision = image["config"]["digest"].removeprefix("sha256:")
    return {
        **tag_json(emulator, repository, name),
        "revision": revision,
        "short_revision": revision[:9],
        "digest": read.digest,
        "created_at": read.created_at,
        # ``layers.sum(&:size) if v2?``: the layers only.
        "total_size": sum(layer["size"] for layer in image.get("layers", [])),
    }


_INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


def _is_index(manifest: dict[str, Any]) -> bool:
    return manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest


def _manifest(
    emulator: GitLabEmulator, repository: Repository, reference: str
) -> tuple[str, dict[str, Any]] | None:
    """The manifest's digest and body, as ContainerRegistry::Client#repository_manifest."""
    status, headers, body = emulator.store.registry.request(
        "GET", f"/v2/{repository.path}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT}
    )
    if status == 404:
        return None
    if status != 200:
        raise ApiError(500, "500 Internal Server Error")
    digest = next(v for k, v in headers.items() if k.lower() == "docker-content-digest")
    return digest, json.loads(body)


GET_TAG = _registry_route("GET", "/projects/:id/registry/repositories/:rid/tags/:tag")(_get_tag)


def _delete_tag(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    """``delete '.../tags/:tag_name'``: 200 with an empty body.

    ``authorize_destroy_container_image_tag!`` is ``authorize! :destroy_container_image_tag,
    tag`` (Developer). With the metadata database ``tag`` is ContainerRepository#tag's search
    of the registry, nil for a tag that is gone, and authorize! on nil (DeclarativePolicy's
    NilPolicy) is "403 Forbidden": a vanished tag is refused, not reported missing. Without it
    ``tag`` is ContainerRegistry::Tag.new (always there), and the registry's 404 counts as
    deleted (ContainerRegistry::Client#delete_if_exists: ``result.success? || status == 404``):
    200. Then Projects::ContainerRepository::Gitlab::DeleteTagsService#filter_out_protected!
    drops tags a protection rule covers for this caller (see protected_for); none left:
    ``forbidden!(PROTECTED_TAGS_ERROR_MESSAGE)``.
    """
    project, role = _project(emulator, DELETE_TAG, caller, params)
    repository = _repository(project, params["rid"])
    tag = params["tag"]
    exists = tag in emulator.store.digests(repository.path, [tag])
    if emulator.metadata_database and not exists:
        raise forbidden()
    authorize(role, Role.developer)
    if protected_for(project, role, tag):
        raise forbidden(PROTECTED_TAGS_ERROR_MESSAGE)
    try:
        emulator.store.delete_tag(repository.path, tag)
    except TagDeleteFailed as error:
        # The registry failed the delete: the route's `else bad_request!`.
        raise ApiError(400, "400 Bad Request") from error
    return 200, None, {}


def protected_for(project: Project, role: Role, tag: str) -> bool:
    """Whether a protection tag rule stops ``role`` deleting ``tag``.

    DeleteTagsService#filter_out_protected!: the project's rules ``for_delete_and_access``
    (``minimum_access_level_for_delete > user_access_level``), each pattern as
    ``Gitlab::UntrustedRegexp.new(rule.tag_name_pattern)`` and ``pattern.match?(tag_name)``:
    RE2 partial matching, unanchored, so ``release`` covers ``pre-release-1`` too. Only mutable
    rules count in CE (fetch_eligible_tag_rules_for_project: ``tag_rules.mutable``).
    """
    for rule in project.tag_rules:
        level = rule.minimum_access_level_for_delete
        if not rule.mutable or level is None or Role[level] <= role:
            continue
        if re2.search(rule.tag_name_pattern, tag):
            return True
    return False


DELETE_TAG = _registry_route("DELETE", "/projects/:id/registry/repositories/:rid/tags/:tag")(
    _delete_tag
)


def _bulk_delete(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    """``delete '.../tags'``: "Delete registry repository tags in bulk", 202.

    lib/api/project_container_repositories.rb: ``at_least_one_of :name_regex,
    :name_regex_delete`` (Grape: 400 ``{"error": ...}``); authorize_admin_container_image!
    (Maintainer); then ``render_api_error!(message, 400) unless
    obtain_new_cleanup_container_lease`` (Gitlab::ExclusiveLease
    "container_repository:cleanup_tags:#{id}", timeout 1 hour): the body is exactly
    ``{"message": BULK_DELETE_MESSAGE}``. CleanupContainerRepositoryWorker then runs
    CleanupTagsService; the emulator runs it before answering (see cleanup_tags).
    """
    project, role = _project(emulator, BULK_DELETE, caller, params)
    options = {**request.body, **request.query}
    delete_regex = options.get("name_regex_delete") or options.get("name_regex")
    if not delete_regex:
        raise ApiError(
            400,
            "name_regex, name_regex_delete are missing, at least one parameter must be provided",
            key="error",
        )
    for key in ("name_regex_delete", "name_regex", "name_regex_keep"):
        # untrusted_regexp: true (lib/api/validations/validators/untrusted_regexp.rb): RE2.
        if options.get(key):
            try:
                re2.compile(options[key])
            except re2.error as error:
                raise ApiError(400, f"{key} is an invalid regexp: {error}", key="error") from None
    authorize(role, Role.maintainer)
    repository = _repository(project, params["rid"])
    now = emulator.clock()
    last = emulator.bulk_delete_leases.get(repository.id)
    if last is not None and now - last < BULK_DELETE_LEASE.total_seconds():
        raise ApiError(400, BULK_DELETE_MESSAGE)
    emulator.bulk_delete_leases[repository.id] = now
    for name in cleanup_tags(emulator, project, role, repository, options, now):
        emulator.store.delete_tag(repository.path, name)
    return 202, None, {}


def cleanup_tags(
    emulator: GitLabEmulator,
    project: Project,
    role: Role,
    repository: Repository,
    options: dict[str, Any],
    now: float,
) -> list[str]:
    """The tags CleanupTagsService deletes (app/services/projects/container_repository/
    cleanup_tags_base_service.rb and gitlab/cleanup_tags_service.rb).

    1. filter_out_latest!: never ``latest``.
    2. filter_by_name!: ``UntrustedRegexp.new("\\A#{name_regex_delete || name_regex}\\z")``
       matches and ``"\\A#{name_regex_keep}\\z"`` does not. The pattern is pasted between
       the anchors with no group, so ``a|b`` means "starts with a, or ends with b".
    3. partition_by_keep_n: sorted by pushed_at, newest first (no time: now), the first
       keep_n kept.
    4. partition_by_older_than: of the rest, those pushed before now - older_than go.
    pushed_at is ``tag.updated_at || tag.created_at`` (the registry's push time) with the
    metadata database, the config's ``created`` without it (third_party/cleanup_tags_service).
    DeleteTagsService then drops protected tags for the caller (protected_for).
    """
    delete_regex = options.get("name_regex_delete") or options.get("name_regex") or ""
    keep_regex = options.get("name_regex_keep") or ""
    # Gitlab::UntrustedRegexp is RE2; #match? is a partial (unanchored) search.
    deleting = re2.compile(r"\A" + delete_regex + r"\z")
    keeping = re2.compile(r"\A" + keep_regex + r"\z")
    names = [
        name
        for name in emulator.store.tags(repository.path)
        if name != "latest" and deleting.search(name) and not keeping.search(name)
    ]
    moment = datetime.fromtimestamp(now, UTC)
    pushed = {name: _pushed_at(emulator, repository, name) for name in names}
    if options.get("keep_n") not in (None, ""):
        names.sort(key=lambda n: pushed[n] or moment, reverse=True)
        names = names[int(options["keep_n"]) :]
    older_than = options.get("older_than")
    if older_than:
        cutoff = moment - duration(older_than)
        names = [n for n in names if (stamp := pushed[n]) is not None and stamp < cutoff]
    return [name for name in names if not protected_for(project, role, name)]


def _pushed_at(emulator: GitLabEmulator, repository: Repository, name: str) -> datetime | None:
    if emulator.metadata_database:
        return pushed_at(emulator.store.registry, repository.path, name)
    details = emulator.store.details(repository.path, name)
    if details is None or details.created_at is None:
        return None
    return parse_time(details.created_at)


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
