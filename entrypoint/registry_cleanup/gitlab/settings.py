"""A project's own record (lib/api/projects.rb): our access level in it, and its cleanup
policy (``container_expiration_policy_attributes``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from registry_cleanup.gitlab.client import (
    JOB_TOKEN_ENV,
    TOKEN_ENV,
    GitLabApiError,
    GitLabClient,
    NotFoundError,
    Role,
    TokenKind,
)


class ProjectSettings:
    def __init__(self, client: GitLabClient, project_ref: str, where: str) -> None:
        self._client = client
        self._project_ref = project_ref
        self._where = where

    def project(self) -> dict[str, Any]:
        with self._projects_api("read the project", Role.guest):
            attributes: dict[str, Any] = self._client.gl.projects.get(self._project_ref).attributes
        return attributes

    def caller_access_level(self) -> int | None:
        """Our access level in the project (Gitlab::Access), the higher of the project's and
        its group's membership as GET /projects/:id shows them
        (lib/api/entities/project_with_access.rb); None when unknown (no membership shown,
        e.g. an administrator, or a job token, which cannot read the project)."""
        try:
            permissions = self.project().get("permissions") or {}
        except GitLabApiError:
            return None
        levels = [
            int(access["access_level"])
            for access in (permissions.get("project_access"), permissions.get("group_access"))
            if isinstance(access, dict) and access.get("access_level") is not None
        ]
        return max(levels) if levels else None

    def policy(self) -> dict[str, Any]:
        policy: dict[str, Any] = self.project().get("container_expiration_policy") or {}
        return policy

    def set_policy(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the cleanup policy with ``attributes`` exactly as given: the caller groups
        the regexes (policy.to_send), since GitLab builds them as \\A#{regex}\\z too
        (cleanup_tags_base_service.rb)."""
        with self._projects_api("change the cleanup policy", Role.maintainer):
            updated = self._client.gl.projects.update(
                self._project_ref, {"container_expiration_policy_attributes": dict(attributes)}
            )
        policy: dict[str, Any] = updated.get("container_expiration_policy") or {}
        return policy

    @contextmanager
    def _projects_api(self, operation: str, role: Role) -> Iterator[None]:
        """lib/api/projects.rb takes no job token: GitLab treats one as anonymous, so a
        private project answers 404, not 401. Say why."""
        try:
            with self._client.errors(operation, role, self._where):
                yield
        except NotFoundError as error:
            if self._client.credentials.kind is not TokenKind.job:
                raise
            raise NotFoundError(
                f"{error}: a CI job token ({JOB_TOKEN_ENV}) cannot use the Projects API; set "
                f"{TOKEN_ENV} to an access token with the api scope",
                error.status,
            ) from None
