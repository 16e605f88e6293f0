"""A repository's tags through GraphQL: pages of 20 with digests and creation times, read
from both ends, read again, and deleted 20 at a time (app/graphql/: Query.containerRepository,
ContainerRepositoryDetails.tags, Mutation.destroyContainerRepositoryTags). GraphQL takes access
tokens only; with a job token, or once GraphQL failed to answer, the caller uses REST
(registry.py)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

from registry_cleanup.gitlab.client import (
    GitLabApiError,
    GitLabClient,
    GraphQLUnavailable,
    parse_time,
)
from registry_cleanup.gitlab.registry import Repository, TagDetail

# ContainerRepositoryDetails.tags declares max_page_size: 20 and is externally paginated
# (app/graphql/types/container_registry/container_repository_details_type.rb): the registry
# is asked for `first` tags, the connection returns at most 20 of them and the cursor is the
# registry's, past all `first`. Asking for more than 20 silently skips the rest of each page.
GRAPHQL_PAGE = 20
# Tag metadata for retention, 20 tags per request (api/graphql/reference/:
# Query.containerRepository, ContainerRepositoryDetails.tags, ContainerRepositoryTag).
# The REST API needs one request per tag for the same.
TAGS_QUERY = """
query tags(
  $id: ContainerRepositoryID!, $first: Int!, $after: String, $sort: ContainerRepositoryTagSort
) {
  containerRepository(id: $id) {
    tags(first: $first, after: $after, sort: $sort) {
      pageInfo { endCursor hasNextPage }
      nodes { name digest createdAt }
    }
  }
}
"""
# Up to 20 tags of one repository per request (app/graphql/mutations/container_repositories/
# destroy_tags.rb, LIMIT = 20), through the same DeleteTagsService as the REST single-tag
# delete: protection rules apply alike, and the answer names the tags actually deleted.
DESTROY_TAGS_LIMIT = 20
DESTROY_TAGS_MUTATION = """
mutation destroyTags($id: ContainerRepositoryID!, $tagNames: [String!]!) {
  destroyContainerRepositoryTags(input: {id: $id, tagNames: $tagNames}) {
    deletedTagNames
    errors
  }
}
"""


# The orders a repository's tags are read in (ContainerRepositoryTagSort, both with and
# without the registry metadata database: container_repository_tags_resolver.rb).
FORWARD, BACKWARD = "NAME_ASC", "NAME_DESC"


@dataclass(frozen=True)
class TagPage:
    """One GraphQL page of a repository's tags: the order and cursor it was read with, and its
    place in that order's chain of pages (0 first).

    Both of GitLab's cursors resume from a position (the registry's last tag name with the
    metadata database, graphql-ruby's offset without it), so a page can be read again later,
    on its own, to see those tags' digests just before they are deleted."""

    after: str | None
    tags: tuple[TagDetail, ...]
    sort: str = FORWARD
    position: int = 0


@dataclass(frozen=True)
class TagListing:
    """A repository's tags as GraphQL pages, and why they were read in one chain if they were
    (``note``: GitLab did not keep the order asked for)."""

    pages: list[TagPage]
    note: str | None = None


def _names(pages: Sequence[TagPage]) -> list[str]:
    return [tag.name for page in pages for tag in page.tags]


def _strictly(names: Sequence[str], sort: str) -> bool:
    """Whether ``names`` are in ``sort``'s order, each once (GitLab compares names bytewise:
    container_repository_tags_resolver.rb, the registry's sort=-name)."""
    pairs = pairwise(names)
    if sort == FORWARD:
        return all(a < b for a, b in pairs)
    return all(a > b for a, b in pairs)


class TagPages:
    """The GraphQL side of one project's container repositories."""

    def __init__(self, client: GitLabClient, where: str) -> None:
        self._client = client
        self._where = where

    def listing(self, repository: Repository) -> TagListing | None:
        """Every tag, page after page as GraphQL serves them (20 each), with each page's
        cursor; None when GraphQL is not available to us.

        GraphQL's cursors chain the pages: one round trip each, one after another. So when
        there is more than one page, the rest are read two at a time, one from each end (the
        other in NAME_DESC order), until the two overlap: half the round trips, and at most two
        pages more than a single chain would read.

        That the ends met is a conclusion from the order of the names, so the order is checked,
        never assumed: if either chain is not in the order asked for, the pages from the end
        are dropped and the first chain is read on to the page GitLab calls its last."""
        if not self._client.graphql_usable:
            return None
        try:
            return self._two_ended_tag_pages(repository)
        except GraphQLUnavailable:
            self._client.graphql_usable = False
            return None

    def _two_ended_tag_pages(self, repository: Repository) -> TagListing:
        first, forward = self._graphql_tags(repository, None, FORWARD, 0)
        ahead_pages = [first]
        if forward is None:
            return TagListing(ahead_pages)
        behind_pages: list[TagPage] = []
        backward: str | None = None
        position = 1
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tags") as pool:
            while True:
                from_end = pool.submit(
                    self._graphql_tags, repository, backward, BACKWARD, position - 1
                )
                ahead, forward = self._graphql_tags(repository, forward, FORWARD, position)
                behind, backward = from_end.result()
                ahead_pages.append(ahead)
                behind_pages.append(behind)
                ascending = _names(ahead_pages)
                descending = _names(behind_pages)
                if not (_strictly(ascending, FORWARD) and _strictly(descending, BACKWARD)):
                    return self._one_chain(repository, ahead_pages, forward, position)
                # Read so far: every name up to the highest read from the start, and every
                # name from the lowest read from the end.
                met = bool(descending) and descending[-1] <= ascending[-1]
                if forward is None or backward is None or met:
                    return TagListing(ahead_pages + behind_pages)
                position += 1

    def _one_chain(
        self, repository: Repository, pages: list[TagPage], forward: str | None, position: int
    ) -> TagListing:
        """The first chain read on to its last page: GitLab did not keep the order asked for,
        so where the two ends meet cannot be told from the names."""
        note = (
            f"{repository.location}: GitLab did not return the tags in the order asked for "
            f"({FORWARD}, {BACKWARD}), so they were read from the first page to the last"
        )
        while forward is not None:
            position += 1
            page, forward = self._graphql_tags(repository, forward, FORWARD, position)
            pages.append(page)
        return TagListing(pages, note)

    def again(self, repository: Repository, page: TagPage) -> TagPage:
        """One page read again from its cursor: the tags now at that position."""
        try:
            again, _ = self._graphql_tags(repository, page.after, page.sort, page.position)
        except GraphQLUnavailable:
            raise GitLabApiError(
                f"could not list tags of {repository.location}: GraphQL stopped answering"
            ) from None
        return again

    def _graphql_tags(
        self, repository: Repository, after: str | None, sort: str, position: int
    ) -> tuple[TagPage, str | None]:
        variables = {
            "id": f"gid://gitlab/ContainerRepository/{repository.id}",
            "first": GRAPHQL_PAGE,
            "after": after,
            "sort": sort,
        }
        data = self._client.graphql(
            f"list tags of {repository.location}", TAGS_QUERY, variables, self._where
        )
        repository_node = data.get("containerRepository")
        if repository_node is None:
            raise GraphQLUnavailable  # not visible through GraphQL: REST decides
        connection = repository_node["tags"]
        tags = tuple(
            TagDetail(
                name=str(node["name"]),
                # null where GitLab could not read the manifest just then: "" (unknown)
                digest=str(node["digest"]) if node.get("digest") else "",
                created_at=parse_time(node["createdAt"]) if node.get("createdAt") else None,
            )
            for node in connection["nodes"]
        )
        info = connection["pageInfo"]
        end_cursor = info["endCursor"] if info["hasNextPage"] else None
        return TagPage(after=after, tags=tags, sort=sort, position=position), end_cursor

    def destroy(self, repository: Repository, names: Sequence[str]) -> set[str]:
        """Delete up to 20 tags in one request; the names GitLab says it deleted.

        A tag left out of the answer was not deleted (protected, or the registry refused);
        the caller finds out why with the single-tag delete."""
        if len(names) > DESTROY_TAGS_LIMIT:
            raise ValueError(f"at most {DESTROY_TAGS_LIMIT} tags per request")
        variables = {
            "id": f"gid://gitlab/ContainerRepository/{repository.id}",
            "tagNames": list(names),
        }
        operation = f"delete {len(names)} tags of {repository.location}"
        try:
            data = self._client.graphql(operation, DESTROY_TAGS_MUTATION, variables, self._where)
        except GraphQLUnavailable:
            raise GitLabApiError(f"could not {operation}: GraphQL refused the mutation") from None
        answer = data.get("destroyContainerRepositoryTags") or {}
        return {str(name) for name in answer.get("deletedTagNames") or ()}
