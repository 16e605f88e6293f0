"""A group and every container repository below it (lib/api/groups.rb,
lib/api/group_container_repositories.rb). The group's calls take an access token only: those
routes have no ``job_token_allowed`` setting, so a CI job token is not even looked at there
(GitLab answers 401)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gitlab

from registry_cleanup.errors import InputError
from registry_cleanup.gitlab.client import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    PER_PAGE,
    Credentials,
    GitLabApiError,
    GitLabClient,
    Role,
)
from registry_cleanup.gitlab.project import GitLabApi
from registry_cleanup.gitlab.registry import Repository


@dataclass(frozen=True)
class GroupRepository:
    """A container repository as the group listing shows it (lib/api/entities/container_registry
    .rb Repository: ``path`` is the project's full path plus the repository name, lowercased)."""

    id: int
    name: str
    path: str
    location: str
    project_id: int

    @property
    def project_path(self) -> str:
        return self.as_repository().project_path

    def as_repository(self) -> Repository:
        return Repository(id=self.id, path=self.path, location=self.location, name=self.name)


class GitLabGroupApi:
    """One group on one GitLab instance; its projects share the group's client (one session,
    one rate-limit budget for the whole group sweep)."""

    def __init__(
        self,
        api_v4_url: str,
        group: str,
        credentials: Credentials,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if not group:
            raise InputError("no group: pass --group (an ID or a full path such as my-group/sub)")
        self.client = GitLabClient(
            api_v4_url, credentials, timeout=timeout, max_retries=max_retries
        )
        self.group_ref = group
        self.where = f"group {group}"

    def full_path(self) -> str:
        """The group's full path (GET /groups/:id, without its project list)."""
        path = f"/groups/{gitlab.utils.EncodedId(self.group_ref)}"
        with self.client.errors("read the group", Role.reporter, self.where):
            answer = self.client.gl.http_get(path, query_data={"with_projects": False})
        if not isinstance(answer, dict):
            raise GitLabApiError(f"could not read the group: unexpected answer from {path}")
        return str(answer["full_path"])

    def group_repositories(self) -> list[GroupRepository]:
        """Every container repository of the group and its subgroups, 100 per request.

        GitLab offers no filter here (ContainerRepositoriesFinder: for_group_and_its_subgroups,
        projects with the container registry enabled); --no-subgroups filters on our side.
        """
        path = f"/groups/{gitlab.utils.EncodedId(self.group_ref)}/registry/repositories"
        found = []
        with self.client.errors(
            "list the group's container repositories", Role.reporter, self.where
        ):
            for item in self.client.gl.http_list(path, iterator=True, per_page=PER_PAGE):
                found.append(
                    GroupRepository(
                        id=int(item["id"]),
                        name=str(item.get("name") or ""),
                        path=str(item["path"]),
                        location=str(item["location"]),
                        project_id=int(item["project_id"]),
                    )
                )
        return found

    def project_api(self, project_id: int, repositories: Sequence[GroupRepository]) -> GitLabApi:
        """A project of the group on the group's client, its repositories as listed: no
        request for them again (the per-project list is what the group listing answered)."""
        listed = [repository.as_repository() for repository in repositories]
        return GitLabApi.on(self.client, str(project_id), listed)
