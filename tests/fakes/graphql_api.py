"""GitLab's GraphQL API (``POST /api/graphql``), for exactly the container tag query we send.

Follows api/graphql/ (authentication: ``Authorization: Bearer`` or ``PRIVATE-TOKEN`` with an
access token; CI job tokens are not accepted) and api/graphql/reference/ for the types below,
a subset of GitLab's schema: ``Query.containerRepository(id: ContainerRepositoryID!)``,
``Query.project(fullPath: ID!)``, ``ContainerRepositoryDetails.tags(first, after)`` (a
connection: ``nodes``, ``pageInfo { endCursor hasNextPage }``), ``ContainerRepositoryTag``
(``name digest createdAt publishedAt location``). graphql-core parses and validates each query
against that schema, so a field or argument outside it is refused the way GitLab refuses it:
HTTP 200 with ``{"errors": [{"message", "locations", ...}]}`` and no data. Pages hold at most
100 nodes (GitLab's max_page_size); cursors are opaque strings.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, build_schema, graphql_sync

from tests.fakes.emulator_core import (
    PERSONAL,
    Answer,
    Caller,
    Project,
    Repository,
    Request,
    Role,
    Route,
    route,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

MAX_PAGE_SIZE = 100
GID_PREFIX = "gid://gitlab/ContainerRepository/"

SCHEMA = build_schema(
    """
    scalar ContainerRepositoryID
    scalar Time

    type Query {
      containerRepository(id: ContainerRepositoryID!): ContainerRepositoryDetails
      project(fullPath: ID!): Project
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
      tags(first: Int, after: String): ContainerRepositoryTagConnection
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


class _Resolver:
    """Root values for one request, seen through the caller's permissions."""

    def __init__(self, emulator: GitLabEmulator, user: str) -> None:
        self._emulator = emulator
        self._user = user

    def _visible(self, project: Project) -> bool:
        role = project.members.get(self._user)
        return role is not None and role >= Role.reporter

    def container_repository(self, _info: object, id: str) -> dict[str, Any] | None:
        if not id.startswith(GID_PREFIX) or not id.removeprefix(GID_PREFIX).isdigit():
            raise GraphQLError(f"{id!r} is not a valid Global ID")
        wanted = int(id.removeprefix(GID_PREFIX))
        for project in self._emulator.projects.values():
            for repository in project.repositories:
                if repository.id == wanted:
                    # GitLab answers null for what the caller may not read.
                    return self._repository(repository) if self._visible(project) else None
        return None

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

        def tags(_info: object, first: int | None = None, after: str | None = None) -> Any:
            names = emulator.store.tags(repository.path)
            chunk, more = _page(names, first, after)
            digests = emulator.store.digests(repository.path, chunk)
            nodes = []
            for name in chunk:
                digest = digests.get(name)
                if digest is None:
                    continue  # deleted between the listing and now
                created = emulator.store.created_at(repository.path, digest)
                nodes.append(
                    {
                        "name": name,
                        "location": f"{location}:{name}",
                        "digest": digest,
                        "createdAt": created,
                        # The push time needs GitLab's registry metadata database; a registry
                        # without it leaves publishedAt null, as GitLab self-managed does.
                        "publishedAt": None,
                    }
                )
            return {"nodes": nodes, "pageInfo": _page_info(chunk, more, after)}

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
    """One ``POST /api/graphql``: (status, JSON body, headers)."""
    if not emulator.graphql_enabled:
        return 404, {"message": "404 Not Found"}, {}
    authorization = request.headers.get("authorization", "")
    secret = request.headers.get("private-token") or (
        authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
    )
    token = emulator.tokens.get(secret)
    if token is None or token.kind != "personal":
        return 401, {"errors": [{"message": "Invalid token"}]}, {}
    query = request.body.get("query")
    if not isinstance(query, str):
        return 200, {"errors": [{"message": "No query string was present"}]}, {}
    resolver = _Resolver(emulator, token.user)
    root = {"containerRepository": resolver.container_repository, "project": resolver.project}
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
