"""Groups: lib/api/groups.rb (GET /groups/:id) and lib/api/group_container_repositories.rb
(GET /groups/:id/registry/repositories); api/groups/ and api/container_registry/.

Tokens: neither file has ``route_setting :authentication, job_token_allowed: true``, so a job
token is not looked at (lib/gitlab/auth/auth_finders.rb find_user_from_job_token returns early):
the request is anonymous and a private group answers ``404 Group Not Found``
(lib/api/helpers.rb find_group!). Access tokens only: a group access token is a bot user who is
a member of the group, and membership is inherited by every project and subgroup below it.

The repository listing (ContainerRepositoriesFinder with a Group subject):
``ContainerRepository.for_group_and_its_subgroups(group)``: every repository of every project
in the group and its subgroups whose container registry is enabled; no parameter narrows it
(``params do use :pagination end`` only) and ``tags``/``tags_count`` are always off
(``present paginate(repositories), ..., tags: false, tags_count: false``). Authorization is on
the group (``authorize! :read_container_image, user_group``: Reporter), not per project: a
project whose code the caller cannot read is listed all the same. Offset pagination orders by
id (lib/gitlab/pagination/offset_pagination.rb add_default_order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.emulator_core import (
    PERSONAL,
    Answer,
    ApiError,
    Caller,
    Project,
    Request,
    Role,
    Route,
    authorize,
    not_found,
    paginate,
    route,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator


@dataclass
class Group:
    """A group (app/models/group.rb); ``full_path`` such as ``acme/platform``. Private."""

    id: int
    full_path: str
    members: dict[str, Role] = field(default_factory=dict)

    def contains(self, project: Project) -> bool:
        """The project is in this group or one of its subgroups (Project.for_group_and_its_
        subgroups: the group's self_and_descendants namespaces)."""
        return project.path_with_namespace.lower().startswith(self.full_path.lower() + "/")

    def role_of(self, emulator: GitLabEmulator, user: str) -> Role | None:
        """Membership here or in an ancestor group (members are inherited downwards)."""
        roles = [
            group.members[user]
            for group in emulator.groups.values()
            if user in group.members
            and (group is self or self.full_path.startswith(group.full_path + "/"))
        ]
        return max(roles) if roles else None


def find_group(emulator: GitLabEmulator, caller: Caller, group_ref: str) -> tuple[Group, Role]:
    """lib/api/helpers.rb find_group!: by ID or full path; not visible: 404 Group Not Found."""
    if group_ref.isdigit():
        group = emulator.groups.get(int(group_ref))
    else:
        group = next(
            (g for g in emulator.groups.values() if g.full_path.lower() == group_ref.lower()),
            None,
        )
    role = group.role_of(emulator, caller.token.user) if group and caller.token else None
    if group is None or role is None:
        raise not_found("Group")
    return group, role


def _group_json(group: Group) -> dict[str, Any]:
    """Entities::Group (lib/api/entities/group.rb), the fields a client reads."""
    name = group.full_path.rsplit("/", 1)[-1]
    return {
        "id": group.id,
        "name": name,
        "path": name,
        "full_name": group.full_path.replace("/", " / "),
        "full_path": group.full_path,
        "visibility": "private",
        "parent_id": None,
    }


def _get_group(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    group, _ = find_group(emulator, caller, params["id"])
    body = _group_json(group)
    if request.query.get("with_projects", "true") != "false":
        # Entities::GroupDetail (with_projects defaults to true): the group's own projects.
        body["projects"] = [
            {"id": p.id, "path_with_namespace": p.path_with_namespace}
            for p in emulator.projects.values()
            if p.path_with_namespace.rsplit("/", 1)[0].lower() == group.full_path.lower()
        ]
    return 200, body, {}


GET_GROUP = route(
    "GET",
    "/groups/:id",
    tokens=PERSONAL,
    source="lib/api/groups.rb get ':id' (no job_token_allowed route setting)",
)(_get_group)


def _list_group_repositories(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    group, role = find_group(emulator, caller, params["id"])
    authorize(role, Role.reporter)  # authorize! :read_container_image, user_group
    repositories = sorted(
        (
            repository
            for project in emulator.projects.values()
            if group.contains(project) and project.container_registry_enabled
            for repository in project.repositories
        ),
        key=lambda repository: repository.id,
    )
    chunk, headers = paginate(request, repositories)
    body = []
    for repository in chunk:
        entry: dict[str, Any] = {
            "id": repository.id,
            "name": repository.name,
            # ContainerRepository#path: [project.full_path, name].join('/').downcase
            "path": repository.path.lower(),
            "project_id": repository.project_id,
            "location": emulator.location(repository),
            "created_at": repository.created_at,
            "cleanup_policy_started_at": None,
            "status": repository.status,
        }
        if role >= Role.maintainer:
            # expose :delete_api_path, if: admin_container_image
            entry["delete_api_path"] = (
                f"http://127.0.0.1:{emulator.port}/api/v4/projects/{repository.project_id}"
                f"/registry/repositories/{repository.id}"
            )
        body.append(entry)
    return 200, body, headers


LIST_GROUP_REPOSITORIES = route(
    "GET",
    "/groups/:id/registry/repositories",
    tokens=PERSONAL,
    source="lib/api/group_container_repositories.rb (no job_token_allowed route setting)",
)(_list_group_repositories)

ROUTES: list[Route] = [LIST_GROUP_REPOSITORIES, GET_GROUP]

__all__ = ["ROUTES", "ApiError", "Group", "find_group"]
