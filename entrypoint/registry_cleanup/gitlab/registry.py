"""A project's container repositories and their tags over REST
(lib/api/project_container_repositories.rb; every route takes a job token of the project)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitlab.v4.objects import ProjectRegistryRepository

from registry_cleanup.domain.safety import gitlab_whole_tag
from registry_cleanup.gitlab.client import (
    PER_PAGE,
    GitLabApiError,
    GitLabClient,
    NotFoundError,
    Role,
    parse_time,
)
from registry_cleanup.pool import run_bounded

# python-gitlab's backoff for transient errors: 0.1 s, doubled each time.
TAG_RETRY_BACKOFF = 0.1


@dataclass(frozen=True)
class Repository:
    """A container repository of the project (api/container_registry/)."""

    id: int
    path: str
    location: str
    # The repository's name under its project ("" for the project's own repository).
    name: str = ""

    @property
    def project_path(self) -> str:
        """The owning project's full path (lowercase), without a request: path minus name."""
        return self.path[: -len(self.name) - 1] if self.name else self.path


def named(repositories: Sequence[Repository], name: str) -> list[Repository]:
    """The repositories a --repository value names: by path, location or id."""
    return [r for r in repositories if name in (r.path, r.location, str(r.id))]


def paths_of(repositories: Sequence[Repository]) -> str:
    """The repositories' paths for a message saying which there are."""
    return ", ".join(r.path for r in repositories) or "none"


@dataclass(frozen=True)
class TagDetail:
    name: str
    digest: str  # "" when GitLab did not know it (GraphQL's nullable digest)
    created_at: datetime | None


class RegistryRepositories:
    """The container repositories of one project and their tags."""

    def __init__(self, client: GitLabClient, project: Any, where: str) -> None:  # noqa: ANN401 (python-gitlab's Project)
        self._client = client
        self._project = project
        self._where = where
        self._objects: dict[int, Any] = {}

    def listing(self) -> list[Repository]:
        found: list[Repository] = []
        with self._client.errors("list container repositories", Role.reporter, self._where):
            for item in self._project.repositories.list(iterator=True, per_page=PER_PAGE):
                self._objects[item.id] = item
                found.append(
                    Repository(
                        id=item.id,
                        path=item.path,
                        location=item.location,
                        name=getattr(item, "name", "") or "",
                    )
                )
        return found

    def known(self, repositories: Sequence[Repository]) -> list[Repository]:
        """Repositories already listed elsewhere (a group's listing): no request for them."""
        for repository in repositories:
            # Built, not fetched: its tag manager (all the sweep needs) makes the requests.
            self._objects[repository.id] = ProjectRegistryRepository(
                self._project.repositories,
                {"id": repository.id, "path": repository.path, "location": repository.location},
            )
        return list(repositories)

    def tag_names(self, repository: Repository) -> Iterator[str]:
        with self._client.errors(f"list tags of {repository.location}", Role.reporter, self._where):
            for tag in self._tags(repository).list(iterator=True, per_page=PER_PAGE):
                yield str(tag.name)

    def tag(self, repository: Repository, name: str) -> TagDetail | None:
        """The tag's digest and creation time, or None when GitLab does not find it.

        Without the registry metadata database GitLab reads the tag's manifest asking for
        single-platform manifests only (lib/container_registry/base_client.rb ACCEPTED_TYPES),
        so for an OCI image index the registry answers 404 and so does GitLab ("404 Tag Not
        Found": lib/api/project_container_repositories.rb validate_tag!); a registry that
        serves the index anyway makes ``total_size`` fail on its missing layers
        (lib/container_registry/tag.rb ``layers.map``): 500. That 500 is an answer, not an
        outage: a detail with neither digest nor creation time, for the caller to take from
        the registry."""
        operation = f"read tag {repository.location}:{name}"
        attempt = 0
        while True:
            try:
                with self._client.errors(operation, Role.reporter, self._where):
                    # Not python-gitlab's retries, which would ask five times more (about 3 s)
                    # for the 500 GitLab's code gives every time.
                    tag = self._tags(repository).get(name, retry_transient_errors=False)
                break
            except NotFoundError:
                return None
            except GitLabApiError as error:
                if error.status == 500:
                    return TagDetail(name=name, digest="", created_at=None)
                # A gateway's answer, or no answer: transient, retried as python-gitlab would.
                if error.status not in (None, 502, 503, 504):
                    raise
                if attempt >= self._client.max_retries:
                    raise
                time.sleep(TAG_RETRY_BACKOFF * 2**attempt)
                attempt += 1
        created = tag.attributes.get("created_at")
        return TagDetail(
            name=name,
            digest=str(tag.attributes["digest"]),
            created_at=parse_time(created) if created else None,
        )

    def tags(
        self, repository: Repository, names: Sequence[str], concurrency: int
    ) -> dict[str, TagDetail]:
        """Digest and creation time of each named tag that still exists, one REST request
        per tag, ``concurrency`` at a time."""
        found = run_bounded(names, lambda name: self.tag(repository, name), concurrency)
        return {detail.name: detail for detail in found if detail is not None}

    def size(self, repository: Repository) -> int | None:
        """The repository's size in bytes, where GitLab reports it, else None.

        ``GET /registry/repositories/:id?size=true`` (lib/api/container_repositories.rb). GitLab
        knows sizes only with the registry's metadata database (GitLab.com), and that route
        declares no ``job_token_allowed`` (read as: a job token is refused), so None is common
        and not an error.
        """
        try:
            with self._client.errors(
                f"read the size of {repository.location}", Role.reporter, self._where
            ):
                found = self._client.gl.http_get(
                    f"/registry/repositories/{repository.id}", size=True
                )
        except GitLabApiError:
            return None
        size = found.get("size") if isinstance(found, dict) else None
        return int(size) if isinstance(size, int | float) else None

    def delete_tag(self, repository: Repository, name: str) -> None:
        with self._client.errors(
            f"delete tag {repository.location}:{name}", Role.developer, self._where
        ):
            self._tags(repository).delete(name)

    def bulk_delete(
        self,
        repository: Repository,
        *,
        name_regex_delete: str,
        name_regex_keep: str | None,
        keep_n: int | None,
        older_than: str | None,
    ) -> dict[str, Any]:
        """Schedule GitLab's bulk delete; returns the parameters exactly as sent.

        Both regexes are grouped (safety.gitlab_whole_tag), so that GitLab's \\A#{regex}\\z
        means the whole tag, as this command's help promises."""
        sent: dict[str, Any] = {"name_regex_delete": gitlab_whole_tag(name_regex_delete)}
        if name_regex_keep is not None:
            sent["name_regex_keep"] = gitlab_whole_tag(name_regex_keep)
        if keep_n is not None:
            sent["keep_n"] = keep_n
        if older_than is not None:
            sent["older_than"] = older_than
        options = {key: value for key, value in sent.items() if key != "name_regex_delete"}
        with self._client.errors(
            f"bulk-delete tags of {repository.location}", Role.maintainer, self._where
        ):
            self._tags(repository).delete_in_bulk(sent["name_regex_delete"], **options)
        return sent

    def delete(self, repository: Repository) -> None:
        with self._client.errors(
            f"delete repository {repository.location}", Role.maintainer, self._where
        ):
            self._project.repositories.delete(repository.id)

    def _tags(self, repository: Repository) -> Any:  # noqa: ANN401 (python-gitlab is untyped here)
        # The tag manager hangs off the repository object python-gitlab listed.
        item = self._objects.get(repository.id)
        if item is None:
            raise RuntimeError(f"repository {repository.id} was not listed by repositories()")
        return item.tags
