"""A ``TagStore`` over GitLab's REST single-tag endpoints, for deletion.delete_tag.

The same safety steps as the registry path (protection, resolve, compare digests, delete) run
against ``GET``/``DELETE /projects/:id/registry/repositories/:repository_id/tags/:tag_name``.
GitLab's tag delete removes only that tag and never re-points it, so this store is not
``Repairable``: there is no clobber to undo. Where GraphQL listed the tags, it deletes a page
of them in one request (engine/page_delete.py). Failures are ``StoreError``s with their ``Failure``
kind, the error contract ``delete_tag`` expects from every store; a tag GitLab protects is
``Failure.protected``.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry_cleanup.domain.image_age import ImageReader
from registry_cleanup.domain.refs import ImageRef
from registry_cleanup.errors import Failure, StoreError
from registry_cleanup.gitlab import GitLabApi, GitLabApiError, Repository, TagPage

PROTECTED_TAG_MESSAGE = "cannot delete protected tag"

_FAILURES = {401: Failure.unauthorized, 403: Failure.denied, 404: Failure.not_found}


class ApiTagStore:
    """One container repository of one project, reached through GitLab's REST API."""

    def __init__(
        self, api: GitLabApi, repository: Repository, *, images: ImageReader | None = None
    ) -> None:
        self._api = api
        self._repository = repository
        # The registry, for tags GitLab cannot read (domain/image_age.py); None without credentials.
        self._images = images

    def digest(self, ref: ImageRef) -> str | None:
        detail = self._api.registry.tag(self._repository, ref.tag)
        if detail is not None and detail.digest:
            return detail.digest
        # Without the metadata database GitLab answers "404 Tag Not Found" (or 500) for an
        # image index it asked for in a form the registry does not serve: the registry knows.
        if self._images is not None:
            return self._images.digest(ref)
        if detail is None:
            return None
        raise StoreError(
            f"GitLab could not read tag {ref} (an image index?); registry credentials "
            "(CI_REGISTRY_USER, CI_REGISTRY_PASSWORD) would let it be checked",
            failure=Failure.other,
        )

    # -- page_delete.PageDeletes: the tags of one GraphQL page, 20 to a request -----------------

    def digests_on(self, page: TagPage) -> dict[str, str]:
        try:
            again = self._api.pages.again(self._repository, page)
        except GitLabApiError as error:
            raise StoreError(str(error), failure=Failure.other) from None
        return {tag.name: tag.digest for tag in again.tags}

    def delete_names(self, names: Sequence[str]) -> set[str]:
        try:
            return self._api.pages.destroy(self._repository, names)
        except GitLabApiError as error:
            raise StoreError(str(error), failure=Failure.other) from None

    def tag_rm(self, ref: ImageRef) -> None:
        try:
            self._api.registry.delete_tag(self._repository, ref.tag)
        except GitLabApiError as error:
            failure = _FAILURES.get(error.status or 0, Failure.other)
            if error.status == 403 and PROTECTED_TAG_MESSAGE in str(error):
                failure = Failure.protected
            raise StoreError(str(error), failure=failure, detail=str(error)) from None
