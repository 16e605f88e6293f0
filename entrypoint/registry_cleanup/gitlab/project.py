"""One project on one GitLab instance, the way python-gitlab's Project carries its managers:
``refs`` (branches, git tags), ``registry`` (container repositories and their tags over
REST), ``pages`` (tags through GraphQL) and ``settings`` (the project record, the cleanup
policy), all on one shared ``GitLabClient``."""

from __future__ import annotations

from collections.abc import Sequence

from registry_cleanup.domain.safety import GitLabTagRule
from registry_cleanup.errors import InputError
from registry_cleanup.gitlab.client import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    PROJECT_ENV,
    Credentials,
    GitLabClient,
)
from registry_cleanup.gitlab.protection import protected_tag_rules
from registry_cleanup.gitlab.refs import Refs
from registry_cleanup.gitlab.registry import RegistryRepositories, Repository, TagDetail
from registry_cleanup.gitlab.settings import ProjectSettings
from registry_cleanup.gitlab.tag_pages import TagPages


class GitLabApi:
    """One project: its resources, and the few questions that span them."""

    def __init__(
        self,
        api_v4_url: str,
        project: str,
        credentials: Credentials,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        client = GitLabClient(api_v4_url, credentials, timeout=timeout, max_retries=max_retries)
        self._attach(client, project, listed=None)

    @classmethod
    def on(
        cls, client: GitLabClient, project: str, listed: Sequence[Repository] | None = None
    ) -> GitLabApi:
        """A project on a client already made (a group's: one session, one rate-limit budget),
        with its container repositories when a listing already named them."""
        api = cls.__new__(cls)
        api._attach(client, project, listed=listed)
        return api

    def _attach(
        self, client: GitLabClient, project: str, listed: Sequence[Repository] | None
    ) -> None:
        if not project:
            raise InputError(f"no project: pass --project or set {PROJECT_ENV}")
        self.client = client
        self.project_ref = project
        self.where = f"project {project}"
        handle = client.gl.projects.get(project, lazy=True)
        self.refs = Refs(client, handle, self.where)
        self.registry = RegistryRepositories(client, handle, self.where)
        self.pages = TagPages(client, self.where)
        self.settings = ProjectSettings(client, project, self.where)
        self._listed = list(listed) if listed is not None else None

    def repositories(self) -> list[Repository]:
        """The project's container repositories: listed now, or as the group listing gave."""
        if self._listed is not None:
            return self.registry.known(self._listed)
        return self.registry.listing()

    def protected_tag_rules(self) -> list[GitLabTagRule] | None:
        return protected_tag_rules(self.client, self.project_ref, self.where)

    def tag_details(
        self, repository: Repository, names: Sequence[str], concurrency: int
    ) -> dict[str, TagDetail]:
        """Digest and creation time of each named tag that still exists.

        Every tag of the repository in GraphQL pages of 20 when GitLab's GraphQL API answers;
        otherwise one REST request per named tag, ``concurrency`` at a time.
        """
        paged = self.paged_tag_details(repository)
        if paged is not None:
            return {name: paged[name] for name in names if name in paged}
        return self.registry.tags(repository, names, concurrency)

    def paged_tag_details(self, repository: Repository) -> dict[str, TagDetail] | None:
        """Every tag with digest and creation time, 20 per GraphQL request; None when
        GraphQL is not available to us (the caller then uses REST)."""
        listing = self.pages.listing(repository)
        if listing is None:
            return None
        return {tag.name: tag for page in listing.pages for tag in page.tags}
