"""A ``TagStore`` over GitLab's REST single-tag endpoints, for deletion.delete_tag.

The same safety steps as the registry path (protection, resolve, compare digests, delete) run
against ``GET``/``DELETE /projects/:id/registry/repositories/:repository_id/tags/:tag_name``.
GitLab's tag delete removes only that tag and never re-points it, so there is no clobber to
undo. Failures are reported as ``RegctlError`` with a backend-neutral ``Failure`` kind, which is
the error contract ``delete_tag`` expects from every store.
"""

from __future__ import annotations

from registry_cleanup.domain.image_age import ImageReader
from registry_cleanup.domain.refs import ImageRef
from registry_cleanup.errors import CleanupError
from registry_cleanup.gitlab import GitLabApi, GitLabApiError, Repository
from registry_cleanup.registry.regctl import Failure, RegctlError

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
        # Set when GitLab refused the delete because of a protected container tag rule.
        self.refused_as_protected = False

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
        raise RegctlError(
            f"GitLab could not read tag {ref} (an image index?); registry credentials "
            "(CI_REGISTRY_USER, CI_REGISTRY_PASSWORD) would let it be checked",
            failure=Failure.other,
            detail="",
        )

    def is_listed(self, ref: ImageRef) -> bool:
        # GitLab's registry deletes tags directly, so it leaves no dangling tag entry behind:
        # a tag its API does not find is gone.
        return False

    def tag_rm(self, ref: ImageRef) -> None:
        try:
            self._api.registry.delete_tag(self._repository, ref.tag)
        except GitLabApiError as error:
            if error.status == 403 and PROTECTED_TAG_MESSAGE in str(error):
                self.refused_as_protected = True
            failure = _FAILURES.get(error.status or 0, Failure.other)
            raise RegctlError(str(error), failure=failure, detail=str(error)) from None

    def is_placeholder(self, ref: ImageRef) -> bool:
        # GitLab's tag delete never pushes a placeholder.
        return False

    def copy(self, source: str, target: ImageRef) -> None:
        raise CleanupError(f"restoring {target} is not possible through the GitLab API")
