"""The only module that talks to the GitLab API (REST and GraphQL), through python-gitlab.

Imported only inside the commands that need it, so ``registry-cleanup --help`` and the
registry-path ``delete`` never load python-gitlab. The token travels in a request header only;
it never appears in a message, an exception or a report.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import pairwise
from typing import Any

import gitlab
import requests
from gitlab.v4.objects import ProjectRegistryRepository

from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.pool import MAX_CONCURRENCY, run_bounded
from registry_cleanup.rate_limit import RateLimitedSession
from registry_cleanup.safety import ACCESS_LEVELS, GitLabTagRule, gitlab_whole_tag

TOKEN_ENV = "GITLAB_TOKEN"  # noqa: S105 (a variable name, not a secret)
JOB_TOKEN_ENV = "CI_JOB_TOKEN"  # noqa: S105
# Names the variable that holds the token, e.g. a masked CI/CD variable SWEEP_TOKEN.
TOKEN_VARIABLE_ENV = "REGISTRY_CLEANUP_TOKEN_VARIABLE"  # noqa: S105
API_URL_ENV = "CI_API_V4_URL"
PROJECT_ENV = "CI_PROJECT_ID"
PER_PAGE = 100  # the largest page GitLab serves (api/rest/#pagination)
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 5
# python-gitlab's backoff for transient errors: 0.1 s, doubled each time.
TAG_RETRY_BACKOFF = 0.1
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


class TokenKind(StrEnum):
    private = "private"  # personal, project or group access token: PRIVATE-TOKEN header
    job = "job"  # CI_JOB_TOKEN: JOB-TOKEN header


class Role(StrEnum):
    """The least role an operation needs (user/permissions/)."""

    guest = "Guest"
    reporter = "Reporter"
    developer = "Developer"
    maintainer = "Maintainer"


@dataclass(frozen=True)
class Credentials:
    kind: TokenKind
    secret: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        """The token named by $REGISTRY_CLEANUP_TOKEN_VARIABLE, else GITLAB_TOKEN, else
        CI_JOB_TOKEN. Tokens come from the environment only, never from arguments."""
        named = env.get(TOKEN_VARIABLE_ENV)
        if named:
            value = env.get(named)
            if not value:
                raise InputError(f"{TOKEN_VARIABLE_ENV} names {named}, which is unset or empty")
            return cls(TokenKind.job if named == JOB_TOKEN_ENV else TokenKind.private, value)
        if env.get(TOKEN_ENV):
            return cls(TokenKind.private, env[TOKEN_ENV])
        if env.get(JOB_TOKEN_ENV):
            return cls(TokenKind.job, env[JOB_TOKEN_ENV])
        raise InputError(
            f"no GitLab token: set {TOKEN_ENV} (an access token) or run in a CI job "
            f"({JOB_TOKEN_ENV})"
        )

    @property
    def variable(self) -> str:
        return TOKEN_ENV if self.kind is TokenKind.private else JOB_TOKEN_ENV


_API_SUFFIX = re.compile(r"/api/v4/?\Z")


def base_url(api_v4_url: str) -> str:
    """python-gitlab wants the instance URL; CI gives CI_API_V4_URL (…/api/v4)."""
    if not api_v4_url.startswith(("http://", "https://")):
        raise InputError(
            f"API URL {api_v4_url!r} must start with http:// or https:// "
            "(e.g. https://gitlab.example.com/api/v4)"
        )
    if _API_SUFFIX.search(api_v4_url) is None:
        raise InputError(
            f"API URL {api_v4_url!r} must end with /api/v4, like CI_API_V4_URL "
            "(e.g. https://gitlab.example.com/api/v4)"
        )
    return _API_SUFFIX.sub("", api_v4_url)


@dataclass(frozen=True)
class Branch:
    name: str
    default: bool = False
    protected: bool = False


@dataclass(frozen=True)
class Repository:
    """A container repository of the project (api/container_registry/)."""

    id: int
    path: str
    location: str


@dataclass(frozen=True)
class TagDetail:
    name: str
    digest: str  # "" when GitLab did not know it (GraphQL's nullable digest)
    created_at: datetime | None


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


class GitLabApiError(CleanupError):
    """A GitLab API call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(GitLabApiError):
    pass


class GraphQLUnavailable(Exception):
    """GitLab's GraphQL API cannot answer this (absent, disabled, or an older schema)."""


class _Client(gitlab.Gitlab):
    """python-gitlab's client with one retry budget for every request (it defaults to 10)."""

    max_retries = DEFAULT_MAX_RETRIES

    def http_request(
        self,
        verb: str,
        path: str,
        *args: Any,  # noqa: ANN401 (passed through to python-gitlab unchanged)
        **kwargs: Any,  # noqa: ANN401
    ) -> requests.Response:
        kwargs.setdefault("max_retries", self.max_retries)
        return super().http_request(verb, path, *args, **kwargs)


class GitLabApi:
    """One project on one GitLab instance."""

    def __init__(
        self,
        api_v4_url: str,
        project: str,
        credentials: Credentials,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if not project:
            raise InputError(f"no project: pass --project or set {PROJECT_ENV}")
        self._credentials = credentials
        self.project_ref = project
        private = credentials.kind is TokenKind.private
        # retry_transient_errors: python-gitlab retries 5xx and dropped connections with
        # backoff, so every call here survives transient failures. 429s never reach it: the
        # session paces by GitLab's RateLimit headers and waits every 429 out (rate_limit.py).
        # One kept-alive connection per worker: requests' default pool holds 10 and would
        # open (and drop) a fresh connection for every call beyond that.
        session = RateLimitedSession()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=MAX_CONCURRENCY)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._gl = _Client(
            base_url(api_v4_url),
            session=session,
            timeout=timeout,
            retry_transient_errors=True,
            per_page=PER_PAGE,
            private_token=credentials.secret if private else None,
            job_token=None if private else credentials.secret,
        )
        self._gl.max_retries = max_retries
        self._project = self._gl.projects.get(project, lazy=True)
        self._repository_objects: dict[int, Any] = {}
        # POSTed with python-gitlab's own session (keep-alive, retries, our rate limiting)
        # rather than gitlab.GraphQL, whose gql and httpx doubled the start-up time.
        self._graphql_url = f"{base_url(api_v4_url)}/api/graphql"
        # GraphQL takes access tokens only (api/graphql/#authentication); with a job token,
        # and after GraphQL once failed to answer, tag metadata comes from REST.
        self.graphql_usable = private

    # -- project and branches --------------------------------------------------------------

    def project(self) -> dict[str, Any]:
        with self._projects_api("read the project", Role.guest):
            attributes: dict[str, Any] = self._gl.projects.get(self.project_ref).attributes
        return attributes

    @contextmanager
    def _projects_api(self, operation: str, role: Role) -> Iterator[None]:
        """lib/api/projects.rb takes no job token: GitLab treats one as anonymous, so a
        private project answers 404, not 401. Say why."""
        try:
            with self._errors(operation, role):
                yield
        except NotFoundError as error:
            if self._credentials.kind is not TokenKind.job:
                raise
            raise NotFoundError(
                f"{error}: a CI job token ({JOB_TOKEN_ENV}) cannot use the Projects API; set "
                f"{TOKEN_ENV} to an access token with the api scope",
                error.status,
            ) from None

    def branches(self) -> Iterator[Branch]:
        """Every branch, one page of 100 after another, each page read once."""
        with self._errors("list branches", Role.reporter):
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
        with self._errors("list git tags", Role.reporter):
            for tag in self._project.tags.list(iterator=True, per_page=PER_PAGE):
                yield str(tag.name)

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

    # -- container repositories and tags ---------------------------------------------------

    def repositories(self) -> list[Repository]:
        found: list[Repository] = []
        with self._errors("list container repositories", Role.reporter):
            for item in self._project.repositories.list(iterator=True, per_page=PER_PAGE):
                self._repository_objects[item.id] = item
                found.append(Repository(id=item.id, path=item.path, location=item.location))
        return found

    def tag_names(self, repository: Repository) -> Iterator[str]:
        with self._errors(f"list tags of {repository.location}", Role.reporter):
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
                with self._errors(operation, Role.reporter):
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
                if error.status not in (None, 502, 503, 504) or attempt >= self._gl.max_retries:
                    raise
                time.sleep(TAG_RETRY_BACKOFF * 2**attempt)
                attempt += 1
        created = tag.attributes.get("created_at")
        return TagDetail(
            name=name,
            digest=str(tag.attributes["digest"]),
            created_at=_parse_time(created) if created else None,
        )

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
        return self.rest_tag_details(repository, names, concurrency)

    def rest_tag_details(
        self, repository: Repository, names: Sequence[str], concurrency: int
    ) -> dict[str, TagDetail]:
        """Digest and creation time of each named tag that still exists, one REST request
        per tag, ``concurrency`` at a time."""
        found = run_bounded(names, lambda name: self.tag(repository, name), concurrency)
        return {detail.name: detail for detail in found if detail is not None}

    def paged_tag_details(self, repository: Repository) -> dict[str, TagDetail] | None:
        """Every tag with digest and creation time, 20 per GraphQL request; None when
        GraphQL is not available to us (the caller then uses REST)."""
        listing = self.tag_pages(repository)
        if listing is None:
            return None
        return {tag.name: tag for page in listing.pages for tag in page.tags}

    def tag_pages(self, repository: Repository) -> TagListing | None:
        """Every tag, page after page as GraphQL serves them (20 each), with each page's
        cursor; None when GraphQL is not available to us.

        GraphQL's cursors chain the pages: one round trip each, one after another. So when
        there is more than one page, the rest are read two at a time, one from each end (the
        other in NAME_DESC order), until the two overlap: half the round trips, and at most two
        pages more than a single chain would read.

        That the ends met is a conclusion from the order of the names, so the order is checked,
        never assumed: if either chain is not in the order asked for, the pages from the end
        are dropped and the first chain is read on to the page GitLab calls its last."""
        if not self.graphql_usable:
            return None
        try:
            return self._two_ended_tag_pages(repository)
        except GraphQLUnavailable:
            self.graphql_usable = False
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

    def tag_page(self, repository: Repository, page: TagPage) -> TagPage:
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
        data = self._graphql(f"list tags of {repository.location}", TAGS_QUERY, variables)
        repository_node = data.get("containerRepository")
        if repository_node is None:
            raise GraphQLUnavailable  # not visible through GraphQL: REST decides
        connection = repository_node["tags"]
        tags = tuple(
            TagDetail(
                name=str(node["name"]),
                # null where GitLab could not read the manifest just then: "" (unknown)
                digest=str(node["digest"]) if node.get("digest") else "",
                created_at=_parse_time(node["createdAt"]) if node.get("createdAt") else None,
            )
            for node in connection["nodes"]
        )
        info = connection["pageInfo"]
        end_cursor = info["endCursor"] if info["hasNextPage"] else None
        return TagPage(after=after, tags=tags, sort=sort, position=position), end_cursor

    def destroy_tags(self, repository: Repository, names: Sequence[str]) -> set[str]:
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
            data = self._graphql(operation, DESTROY_TAGS_MUTATION, variables)
        except GraphQLUnavailable:
            raise GitLabApiError(f"could not {operation}: GraphQL refused the mutation") from None
        answer = data.get("destroyContainerRepositoryTags") or {}
        return {str(name) for name in answer.get("deletedTagNames") or ()}

    def _graphql(self, operation: str, query: str, variables: Mapping[str, Any]) -> Any:  # noqa: ANN401 (JSON)
        """One GraphQL request; its ``data``. GraphQLUnavailable where REST should decide:
        no GraphQL (404) or a schema without these fields (HTTP 200 with errors, no data)."""
        try:
            with self._errors(operation, Role.reporter):
                answer = self._gl.http_post(
                    self._graphql_url, post_data={"query": query, "variables": dict(variables)}
                )
        except GitLabApiError as error:
            if error.status is None or error.status in (401, 403) or error.status >= 500:
                raise  # the same token or outage would fail over REST too
            raise GraphQLUnavailable from None  # 404: no GraphQL here (or it is switched off)
        if not isinstance(answer, dict):
            raise GitLabApiError(f"could not {operation}: GraphQL gave no JSON object")
        data = answer.get("data")
        if answer.get("errors") and not data:
            raise GraphQLUnavailable  # an older schema, or a refusal GraphQL states as error
        return data or {}

    def repository_size(self, repository: Repository) -> int | None:
        """The repository's size in bytes, where GitLab reports it, else None.

        ``GET /registry/repositories/:id?size=true`` (lib/api/container_repositories.rb). GitLab
        knows sizes only with the registry's metadata database (GitLab.com), and that route
        declares no ``job_token_allowed`` (read as: a job token is refused), so None is common
        and not an error.
        """
        try:
            with self._errors(f"read the size of {repository.location}", Role.reporter):
                found = self._gl.http_get(f"/registry/repositories/{repository.id}", size=True)
        except GitLabApiError:
            return None
        size = found.get("size") if isinstance(found, dict) else None
        return int(size) if isinstance(size, int | float) else None

    def delete_tag(self, repository: Repository, name: str) -> None:
        with self._errors(f"delete tag {repository.location}:{name}", Role.developer):
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
        with self._errors(f"bulk-delete tags of {repository.location}", Role.maintainer):
            self._tags(repository).delete_in_bulk(sent["name_regex_delete"], **options)
        return sent

    def delete_repository(self, repository: Repository) -> None:
        with self._errors(f"delete repository {repository.location}", Role.maintainer):
            self._project.repositories.delete(repository.id)

    def protected_tag_rules(self) -> list[GitLabTagRule] | None:
        """Protected container tag rules, or None when this token may not read them.

        lib/api/project_container_registry_protection_tag_rules.rb (GitLab 18.7; Maintainer,
        admin_container_image) lists the mutable rules only: immutable tag rules (Ultimate)
        stay invisible here, and GitLab refuses their deletes (403) at delete time."""
        path = f"/projects/{gitlab.utils.EncodedId(self.project_ref)}/registry/protection/tag/rules"
        try:
            with self._errors("read protected container tag rules", Role.maintainer):
                rules = self._gl.http_list(path, iterator=True, per_page=PER_PAGE)
                return [
                    GitLabTagRule(
                        tag_name_pattern=str(rule["tag_name_pattern"]),
                        minimum_access_level_for_delete=_level_name(
                            rule.get("minimum_access_level_for_delete")
                        ),
                    )
                    for rule in rules
                ]
        except GitLabApiError as error:
            if error.status in (401, 403, 404):
                return None
            raise

    # -- cleanup policy --------------------------------------------------------------------

    def policy(self) -> dict[str, Any]:
        policy: dict[str, Any] = self.project().get("container_expiration_policy") or {}
        return policy

    def set_policy(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the cleanup policy with ``attributes`` exactly as given: the caller groups
        the regexes (policy.to_send), since GitLab builds them as \\A#{regex}\\z too
        (cleanup_tags_base_service.rb)."""
        with self._projects_api("change the cleanup policy", Role.maintainer):
            updated = self._gl.projects.update(
                self.project_ref, {"container_expiration_policy_attributes": dict(attributes)}
            )
        policy: dict[str, Any] = updated.get("container_expiration_policy") or {}
        return policy

    # -- plumbing ---------------------------------------------------------------------------

    def _tags(self, repository: Repository) -> Any:  # noqa: ANN401 (python-gitlab is untyped here)
        # The tag manager hangs off the repository object python-gitlab listed.
        item = self._repository_objects.get(repository.id)
        if item is None:
            raise RuntimeError(f"repository {repository.id} was not listed by repositories()")
        return item.tags

    @contextmanager
    def _errors(self, operation: str, role: Role) -> Iterator[None]:
        try:
            yield
        except gitlab.exceptions.GitlabError as error:
            raise self._translate(operation, role, error) from None
        except requests.RequestException as error:
            raise GitLabApiError(
                f"could not {operation}: GitLab could not be reached ({type(error).__name__})"
            ) from None

    def _translate(
        self, operation: str, role: Role, error: gitlab.exceptions.GitlabError
    ) -> GitLabApiError:
        status = error.response_code
        detail = _message(error.error_message)
        if status == 401:
            if self._credentials.kind is TokenKind.job:
                hint = (
                    f"a CI job token ({JOB_TOKEN_ENV}) cannot use this endpoint or has expired; "
                    f"set {TOKEN_ENV} to an access token with the api scope"
                )
            else:
                hint = f"the token in {TOKEN_ENV} was rejected (expired, revoked or wrong scope)"
            return GitLabApiError(f"could not {operation}: 401 Unauthorized: {hint}", status)
        if status == 403:
            reason = detail.removeprefix("403 Forbidden").strip(" -")
            why = f" ({reason})" if reason else ""
            return GitLabApiError(
                f"could not {operation}: 403 Forbidden{why}: this needs at least the "
                f"{role.value} role in project {self.project_ref}",
                status,
            )
        if status == 404:
            return NotFoundError(f"could not {operation}: {detail or '404 Not Found'}", status)
        return GitLabApiError(f"could not {operation}: HTTP {status}: {detail}", status)


def _message(raw: object) -> str:
    if isinstance(raw, dict):
        return "; ".join(f"{key} {', '.join(map(str, value))}" for key, value in raw.items())
    return str(raw)


def _level_name(value: object) -> str | None:
    """A rule's access level as a name: GitLab sends the enum's name; a number is mapped."""
    if value is None:
        return None
    if isinstance(value, int):
        return next((name for name, level in ACCESS_LEVELS.items() if level == value), str(value))
    return str(value).lower()


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- groups -----------------------------------------------------------------------------------


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
        """The owning project's full path (lowercase), without a request: path minus name."""
        return self.path[: -len(self.name) - 1] if self.name else self.path

    def as_repository(self) -> Repository:
        return Repository(id=self.id, path=self.path, location=self.location)


class GitLabGroupApi(GitLabApi):
    """One group on one GitLab instance: its own details and every container repository below it.

    The group's calls take an access token only: lib/api/group_container_repositories.rb and
    lib/api/groups.rb have no ``job_token_allowed`` route setting, so a CI job token is not
    even looked at there (GitLab answers 401).
    """

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
        super().__init__(api_v4_url, group, credentials, timeout=timeout, max_retries=max_retries)
        self.group_ref = group
        self._settings = (api_v4_url, timeout, max_retries)

    def full_path(self) -> str:
        """The group's full path (GET /groups/:id, without its project list)."""
        path = f"/groups/{gitlab.utils.EncodedId(self.group_ref)}"
        with self._errors("read the group", Role.reporter):
            answer = self._gl.http_get(path, query_data={"with_projects": False})
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
        with self._errors("list the group's container repositories", Role.reporter):
            for item in self._gl.http_list(path, iterator=True, per_page=PER_PAGE):
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
        """A project of the group whose repositories are already known from the group listing."""
        url, timeout, max_retries = self._settings
        return _ListedProjectApi(
            url,
            str(project_id),
            self._credentials,
            [repository.as_repository() for repository in repositories],
            timeout=timeout,
            max_retries=max_retries,
        )

    def _translate(
        self, operation: str, role: Role, error: gitlab.exceptions.GitlabError
    ) -> GitLabApiError:
        translated = super()._translate(operation, role, error)
        if translated.status == 403:
            return GitLabApiError(
                f"could not {operation}: 403 Forbidden: this needs at least the {role.value} "
                f"role in group {self.group_ref}",
                403,
            )
        return translated


class _ListedProjectApi(GitLabApi):
    """A project whose container repositories came from its group's listing: no request for
    them again (the per-project list is exactly what one group-level call already answered)."""

    def __init__(
        self,
        api_v4_url: str,
        project: str,
        credentials: Credentials,
        repositories: list[Repository],
        *,
        timeout: float,
        max_retries: int,
    ) -> None:
        super().__init__(api_v4_url, project, credentials, timeout=timeout, max_retries=max_retries)
        self._listed = repositories

    def repositories(self) -> list[Repository]:
        for repository in self._listed:
            # Built, not fetched: its tag manager (all the sweep needs) makes the requests.
            self._repository_objects[repository.id] = ProjectRegistryRepository(
                self._project.repositories,
                {"id": repository.id, "path": repository.path, "location": repository.location},
            )
        return list(self._listed)
