"""A project's live refs: branches (lib/api/branches.rb) and git tags (lib/api/tags.rb)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry_cleanup.gitlab.client import PER_PAGE, GitLabClient, Role


@dataclass(frozen=True)
class Branch:
    name: str
    default: bool = False
    protected: bool = False


class Refs:
    """The branches and git tags of one project, each list read page after page, once."""

    def __init__(self, client: GitLabClient, project: Any, where: str) -> None:  # noqa: ANN401 (python-gitlab's Project)
        self._client = client
        self._project = project
        self._where = where

    def branches(self) -> Iterator[Branch]:
        """Every branch, one page of 100 after another, each page read once."""
        with self._client.errors("list branches", Role.reporter, self._where):
            for branch in self._project.branches.list(iterator=True, per_page=PER_PAGE):
                yield Branch(
                    name=branch.name,
                    default=bool(branch.attributes.get("default")),
                    protected=bool(branch.attributes.get("protected")),
                )

    def git_tags(self) -> Iterator[str]:
        """Every git tag's name, 100 per page (lib/api/tags.rb: Reporter, or a job token of
        the project from GitLab 18.3). 404 both for a project without a repository and for a
        job token GitLab ignores (older versions): the caller tells them apart."""
        with self._client.errors("list git tags", Role.reporter, self._where):
            for tag in self._project.tags.list(iterator=True, per_page=PER_PAGE):
                yield str(tag.name)
