"""GitLab's GraphQL API (``POST /api/graphql``), for exactly the container tag query we send.

Follows api/graphql/ (authentication: ``Authorization: Bearer`` or ``PRIVATE-TOKEN`` with an access
token; CI job tokens are not accepted) and api/graphql/reference/ for the types below, a subset of
GitLab's schema: ``Query.containerRepository(id: ContainerRepositoryID!)``,
``Query.project(fullPath: ID!)``, ``ContainerRepositoryDetails.tags(first, after)`` (a connection:
``nodes``, ``pageInfo { endCursor hasNextPage }``), ``ContainerRepositoryTag`` (``name digest
createdAt publishedAt location``), and ``Mutation.destroyContainerRepositoryTags`` (see
_Resolver.destroy_tags). graphql-core parses and validates each query against that schema, so a
field or argument outside it is refused the way GitLab refuses it: HTTP 200 with ``{"errors":
[{"message", "locations", ...}]}`` and no data. Connections hold at most 100 nodes (GitLab's
default max_page_size); ``tags`` at most 20 (its own max_page_size), paged by the registry where
GitLab has the registry metadata database (see _registry_paged_tags).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    graphql_sync,
    parse,
)

from tests.fakes.container_repositories_api import PROTECTED_TAGS_ERROR_MESSAGE, protected_for
from tests.fakes.emulator_core import (
    PERSONAL,
    Answer,
    Caller,
    Project,
    Repository,
    Request,
    Role,
    Route,
    iso,
    route,
)
from tests.fakes.registry_metadata import pushed_at
from tests.fakes.registry_store import TagDeleteFailed

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

# GitLab's default_max_page_size (app/graphql/gitlab_schema.rb), for connections without one.
MAX_PAGE_SIZE = 100
# ContainerRepositoryDetails.tags: max_page_size: 20 (container_repository_details_type.rb).
TAGS_MAX_PAGE_SIZE = 20
# The registry's tags list page when no size is given (the GitLab registry API's default n).
REGISTRY_DEFAULT_PAGE_SIZE = 100
GID_PREFIX = "gid://gitlab/ContainerRepository/"
# Mutations::ContainerRepositories::DestroyTags (destroy_tags.rb)
DESTROY_TAGS_LIMIT = 20
TOO_MANY_TAGS_ERROR_MESSAGE = f"Number of tags is greater than {DESTROY_TAGS_LIMIT}"
# Gitlab::Graphql::Authorize::AuthorizeResource::RESOURCE_ACCESS_ERROR
RESOURCE_ACCESS_ERROR = (
    "The resource that you are attempting to access does not exist or you don't have "
    "permission to perform this action"
)

SCHEMA = build_schema(
    """
    scalar ContainerRepositoryID
    scalar Time

    type Query {
      containerRepository(id: ContainerRepositoryID!): ContainerRepositoryDetails
      project(fullPath: ID!): Project
    }

    type Mutation {
      destroyContainerRepositoryTags(
        input: DestroyContainerRepositoryTagsInput!
      ): DestroyContainerRepositoryTagsPayload
    }

    input DestroyContainerRepositoryTagsInput {
      clientMutationId: String
      id: ContainerRepositoryID!
      tagNames: [String!]!
    }

    type DestroyContainerRepositoryTagsPayload {
      clientMutationId: String
      deletedTagNames: [String!]!
      errors: [String!]!
    }

    type Project {
      id: ID!
      fullPath: ID!
      containerRepositories(first: Int, after: String): ContainerRepositoryConnection
    }

    type ContainerRepositoryConnection {
      nodes: [ContainerRepository]
      pageInfo: PageInfo!
    }

    type ContainerRepository {
      id: ContainerRepositoryID!
      name: String!
      path: String!
      location: String!
    }

    type ContainerRepositoryDetails {
      id: ContainerRepositoryID!
      name: String!
      path: String!
      location: String!
      tags(
        first: Int
        after: String
        sort: ContainerRepositoryTagSort
      ): ContainerRepositoryTagConnection
    }

    enum ContainerRepositoryTagSort {
      NAME_ASC
      NAME_DESC
      PUBLISHED_AT_ASC
      PUBLISHED_AT_DESC
    }

    type ContainerRepositoryTagConnection {
      nodes: [ContainerRepositoryTag]
      pageInfo: PageInfo!
    }

    type PageInfo {
      endCursor: String
      startCursor: String
      hasNextPage: Boolean!
      hasPreviousPage: Boolean!
    }

    type ContainerRepositoryTag {
      name: String!
      location: String!
      digest: String
      createdAt: Time
      publishedAt: Time
    }
    """
)


def _cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        raise GraphQLError(f"Invalid cursor provided: {cursor!r}") from None


def _page(items: list[str], first: int | None, after: str | None) -> tuple[list[str], bool]:
    size = min(first if first is not None else MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    if size < 0:
        raise GraphQLError("Argument 'first' on Field 'tags' has an invalid value")
    start = _after(after)
    remaining = [item for item in items if start is None or item > start]
    return remaining[:size], len(remaining) > size


def _page_info(chunk: list[str], more: bool, after: str | None) -> dict[str, Any]:
    return {
        "endCursor": _cursor(chunk[-1]) if chunk else None,
        "startCursor": _cursor(chunk[0]) if chunk else None,
        "hasNextPage": more,
        "hasPreviousPage": after is not None,
    }


def _tag_node(
    emulator: GitLabEmulator, repository: Repository, name: str, digest: str
) -> dict[str, Any]:
    """ContainerRepositoryTag (app/graphql/types/container_registry/
    container_repository_tag_type.rb)."""
    shown: str | None = digest
    if emulator.metadata_database:
        # transform_tags_page: created_at and published_at are the registry database's times.
        pushed = pushed_at(emulator.store.registry, repository.path, name)
        created = iso(pushed) if pushed is not None else None
        published = created
    else:
        # ContainerRegistry::Tag (lib/container_registry/tag.rb), reading the registry with
        # GitLab's Accept header (registry_store.GITLAB_ACCEPTED_TYPES): #created_at is the
        # config's ``created``, nil for an index (``next unless config``); #digest the
        # registry's Docker-Content-Digest for that request, nil where it answers 404 (an OCI
        # index on distribution 2.x). No published_at.
        read = emulator.store.details(repository.path, name)
        created = read.created_at if read is not None else None
        shown = read.digest if read is not None else None
        published = None
    return {
        "name": name,
        "location": f"{emulator.location(repository)}:{name}",
        "digest": None if name in emulator.unreadable_digests else shown,
        "createdAt": created,
        "publishedAt": published,
    }


def _sorted_names(emulator: GitLabEmulator, repository: Repository, sort: str | None) -> list[str]:
    """The repository's tag names in the order asked for. NAME_ASC, NAME_DESC
    (types/container_registry/container_repository_tags_sort_enum.rb): the resolver's
    sort_tags (Array#sort_by name, reversed for desc) without the metadata database, the
    registry's ``sort=-name`` with it (map_sort_field); both compare names bytewise. The
    PUBLISHED_AT sorts are not modelled: the sweep never asks for them."""
    if sort not in (None, "NAME_ASC", "NAME_DESC"):
        raise GraphQLError(f"sort {sort} is not modelled by the emulator")
    descending = sort == "NAME_DESC" and not emulator.tag_sort_ignored
    return sorted(emulator.store.tags(repository.path), reverse=descending)


def _registry_paged_tags(
    emulator: GitLabEmulator,
    repository: Repository,
    first: int | None,
    after: str | None,
    sort: str | None = None,
) -> dict[str, Any]:
    """``tags`` with the registry metadata database (GitLab.com): paged by the registry.

    app/graphql/resolvers/container_repository_tags_resolver.rb asks the registry for
    ``page_size = [first, last].map(&:to_i).max`` tags after ``last: after``; the registry
    answers a page sorted by name and a next link whose ``last`` is the page's last name, which
    becomes the connection's end cursor (parse_pagination_cursor). The field has
    ``max_page_size: 20`` (container_repository_details_type.rb), and
    ExternallyPaginatedArrayConnection#load_nodes keeps ``items.first(first)`` with ``first``
    capped at 20: asking for 100 returns 20 nodes and a cursor past all 100, so the next page
    skips 80. hasNextPage is ``end_cursor.present?``.
    Ambiguous: with ``first`` absent the resolver sends page_size 0; the registry's answer to
    n=0 is not in gitlabhq. The emulator reads it as the registry's default page (100), the
    reading that skips the most.
    """
    if first is not None and first < 0:
        raise GraphQLError("Argument 'first' on Field 'tags' has an invalid value")
    registry_page_size = first or REGISTRY_DEFAULT_PAGE_SIZE
    names = _sorted_names(emulator, repository, sort)
    descending = sort == "NAME_DESC"
    # The registry's ``last``: the names after it in the order of the listing.
    remaining = [
        name for name in names if after is None or (name < after if descending else name > after)
    ]
    page = remaining[:registry_page_size]
    more = len(remaining) > registry_page_size
    shown = page[: min(first if first is not None else TAGS_MAX_PAGE_SIZE, TAGS_MAX_PAGE_SIZE)]
    digests = emulator.store.digests(repository.path, shown)
    nodes = [
        _tag_node(emulator, repository, name, digests[name]) for name in shown if name in digests
    ]
    end_cursor = page[-1] if more and page else None
    return {
        "nodes": nodes,
        "pageInfo": {
            "endCursor": end_cursor,
            # The registry's previous link carries ``before``: the page's first name.
            "startCursor": page[0] if after is not None and page else None,
            "hasNextPage": end_cursor is not None,
            "hasPreviousPage": after is not None and bool(page),
        },
    }


def _array_paged_tags(
    emulator: GitLabEmulator,
    repository: Repository,
    first: int | None,
    after: str | None,
    sort: str | None = None,
) -> dict[str, Any]:
    """``tags`` without the metadata database: every tag, paged by graphql-ruby.

    The resolver returns ``container_repository.tags`` (the registry's tag list, sorted by
    name) as a plain Array, so graphql-ruby's ArrayConnection pages it: offset cursors,
    ``first`` capped at max_page_size 20, nothing skipped.
    """
    names = _sorted_names(emulator, repository, sort)
    size = min(first if first is not None else TAGS_MAX_PAGE_SIZE, TAGS_MAX_PAGE_SIZE)
    if size < 0:
        raise GraphQLError("Argument 'first' on Field 'tags' has an invalid value")
    start = _offset(after) + 1 if after is not None else 0
    shown = names[start : start + size]
    digests = emulator.store.digests(repository.path, shown)
    nodes = [
        _tag_node(emulator, repository, name, digests[name]) for name in shown if name in digests
    ]
    last = start + len(shown) - 1
    return {
        "nodes": nodes,
        "pageInfo": {
            "endCursor": _cursor(str(last)) if shown else None,
            "startCursor": _cursor(str(start)) if shown else None,
            "hasNextPage": start + size < len(names),
            "hasPreviousPage": start > 0,
        },
    }


def _offset(cursor: str) -> int:
    decoded = _after(cursor)
    if decoded is None or not decoded.isdigit():
        raise GraphQLError(f"Invalid cursor provided: {cursor!r}")
    return int(decoded)


class _Resolver:
    """Root values for one request, seen through the caller's permissions."""

    def __init__(self, emulator: GitLabEmulator, user: str | None) -> None:
        self._emulator = emulator
        self._user = user

    def _visible(self, project: Project) -> bool:
        role = project.members.get(self._user) if self._user is not None else None
        return role is not None and role >= Role.reporter

    def container_repository(self, _info: object, id: str) -> dict[str, Any] | None:
        found = self._find(id)
        if found is None:
            return None
        project, repository = found
        # GitLab answers null for what the caller may not read.
        return self._repository(repository) if self._visible(project) else None

    def _find(self, gid: str) -> tuple[Project, Repository] | None:
        if not gid.startswith(GID_PREFIX) or not gid.removeprefix(GID_PREFIX).isdigit():
            raise GraphQLError(f"{gid!r} is not a valid Global ID")
        wanted = int(gid.removeprefix(GID_PREFIX))
        for project in self._emulator.projects.values():
            for repository in project.repositories:
                if repository.id == wanted:
                    return project, repository
        return None

    def destroy_tags(self, _info: object, input: dict[str, Any]) -> dict[str, Any]:
        """Mutations::ContainerRepositories::DestroyTags
        (app/graphql/mutations/container_repositories/destroy_tags.rb).

        ``tag_names`` is prepared first: more than 20 raise an ArgumentError (a top-level
        error, no data). ``authorized_find!`` with ``authorize :destroy_container_image``
        (Developer): a repository the caller may not destroy in is RESOURCE_ACCESS_ERROR.
        Then Projects::ContainerRepository::DeleteTagsService, whose GitLab-registry part
        (services/projects/container_repository/gitlab/delete_tags_service.rb) drops the tags
        a protection rule covers for the caller (``filter_out_protected!``; none left:
        PROTECTED_TAGS_ERROR_MESSAGE, nothing deleted) and deletes the rest one after another
        with ``container_repository.delete_tag(name)``; a name counts as deleted when the
        registry deleted it or answered 404 (Client#delete_if_exists), so a tag that is
        already gone is in ``deletedTagNames``. None deleted: "could not delete tags: …".
        The payload is ``errors: Array(result[:message])``, ``deleted_tag_names:
        result[:deleted] || []``.
        """
        names = list(input["tagNames"])
        if len(names) > DESTROY_TAGS_LIMIT:
            raise GraphQLError(TOO_MANY_TAGS_ERROR_MESSAGE)
        found = self._find(str(input["id"]))
        project = found[0] if found is not None else None
        role = project.members.get(self._user) if project and self._user is not None else None
        if found is None or role is None or role < Role.developer:
            raise GraphQLError(RESOURCE_ACCESS_ERROR)
        project, repository = found
        allowed = [name for name in names if not protected_for(project, role, name)]
        if names and not allowed:
            return {"deletedTagNames": [], "errors": [PROTECTED_TAGS_ERROR_MESSAGE]}
        deleted: list[str] = []
        for name in allowed:
            try:
                self._emulator.store.delete_tag(repository.path, name)
            except TagDeleteFailed:
                continue  # delete_tag returned false: not in the deleted list
            deleted.append(name)
        if allowed and not deleted:
            message = f"could not delete tags: {', '.join(allowed)}"[:1000]
            return {"deletedTagNames": [], "errors": [message]}
        return {"deletedTagNames": deleted, "errors": []}

    def project(self, _info: object, fullPath: str) -> dict[str, Any] | None:
        for project in self._emulator.projects.values():
            if project.path_with_namespace == fullPath and self._visible(project):
                return self._project(project)
        return None

    def _project(self, project: Project) -> dict[str, Any]:
        repositories = {str(r.id): r for r in project.repositories}

        def connection(
            _info: object, first: int | None = None, after: str | None = None
        ) -> dict[str, Any]:
            chunk, more = _page(sorted(repositories), first, after)
            return {
                "nodes": [self._repository(repositories[key]) for key in chunk],
                "pageInfo": _page_info(chunk, more, after),
            }

        return {
            "id": f"gid://gitlab/Project/{project.id}",
            "fullPath": project.path_with_namespace,
            "containerRepositories": connection,
        }

    def _repository(self, repository: Repository) -> dict[str, Any]:
        emulator = self._emulator
        location = emulator.location(repository)

        def tags(
            _info: object,
            first: int | None = None,
            after: str | None = None,
            sort: str | None = None,
        ) -> Any:
            emulator.tag_sorts[sort or "NAME_ASC"] += 1
            if emulator.metadata_database:
                return _registry_paged_tags(emulator, repository, first, after, sort)
            return _array_paged_tags(emulator, repository, first, after, sort)

        return {
            "id": f"{GID_PREFIX}{repository.id}",
            "name": repository.name,
            "path": repository.path,
            "location": location,
            "tags": tags,
        }


def answer(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    """One ``POST /api/graphql``: (status, JSON body, headers).

    app/controllers/graphql_controller.rb authorize_access_api!: ``if current_user.nil? &&
    request_authenticator.authentication_token_present?`` -> 401 "Invalid token". The GraphQL
    controller has no job_token_allowed route setting, so a job token finds no user
    (auth_finders.rb find_user_from_job_token), and ``JOB-TOKEN`` is one of
    HEADER_TOKEN_KEYS: a job token in any header is refused with that 401. No token at all is
    an anonymous query: private projects' data is null.
    """
    if not emulator.graphql_enabled:
        return 404, {"message": "404 Not Found"}, {}
    authorization = request.headers.get("authorization", "")
    bearer = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
    secret = request.headers.get("private-token") or bearer
    token = emulator.tokens.get(secret)
    presented = bool(secret) or "job-token" in request.headers
    if presented and (token is None or token.kind != "personal"):
        return 401, {"errors": [{"message": "Invalid token"}]}, {}
    query = request.body.get("query")
    if not isinstance(query, str):
        return 200, {"errors": [{"message": "No query string was present"}]}, {}
    _count_root_fields(emulator, query)
    resolver = _Resolver(emulator, token.user if token is not None else None)
    root = {
        "containerRepository": resolver.container_repository,
        "project": resolver.project,
        "destroyContainerRepositoryTags": resolver.destroy_tags,
    }
    result = graphql_sync(
        SCHEMA,
        query,
        root_value=root,
        variable_values=request.body.get("variables"),
        operation_name=request.body.get("operationName"),
        field_resolver=_field,
    )
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    if result.data is not None or not result.errors:
        body["data"] = result.data
    return 200, body, {}


def _count_root_fields(emulator: GitLabEmulator, query: str) -> None:
    try:
        document = parse(query)
    except GraphQLError:
        return  # graphql_sync reports it
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode):
                    emulator.graphql_fields[selection.name.value] += 1


def _field(source: Any, info: Any, **arguments: Any) -> Any:
    """Dict values, calling those that are resolvers (with the field's arguments)."""
    value = source.get(info.field_name) if isinstance(source, dict) else None
    if callable(value):
        return value(info, **arguments)
    return value


GRAPHQL = route(
    "POST",
    "/api/graphql",
    tokens=PERSONAL,
    prefix="",
    self_authenticating=True,
    source="app/controllers/graphql_controller.rb authorize_access_api! (no job tokens)",
)(answer)

ROUTES: list[Route] = [GRAPHQL]
