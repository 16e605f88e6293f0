"""GitLab CI predefined variables -> one typed, validated context object.

Reads only the mapping it is given (``os.environ`` in production), so tests pass plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from registry_cleanup.domain.refs import ImageRef, parse_image_ref, slugify, with_tag
from registry_cleanup.errors import InputError


@dataclass(frozen=True)
class CiContext:
    """What a job knows about itself, from GitLab's predefined variables (blank = unset)."""

    registry_image: str | None
    ref_slug: str | None
    ref_name: str | None
    branch: str | None
    default_branch: str | None
    registry: str | None
    registry_user: str | None
    registry_password: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CiContext:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        return cls(
            registry_image=get("CI_REGISTRY_IMAGE"),
            ref_slug=get("CI_COMMIT_REF_SLUG"),
            ref_name=get("CI_COMMIT_REF_NAME"),
            branch=get("CI_COMMIT_BRANCH"),
            default_branch=get("CI_DEFAULT_BRANCH"),
            registry=get("CI_REGISTRY"),
            registry_user=get("CI_REGISTRY_USER"),
            registry_password=get("CI_REGISTRY_PASSWORD"),
        )

    def branch_tag(self) -> str:
        """The tag a branch pipeline pushes: CI_COMMIT_REF_SLUG, or the slug of the ref name."""
        if self.ref_slug is not None:
            return self.ref_slug
        if self.ref_name is None:
            raise InputError(
                "CI_COMMIT_REF_SLUG and CI_COMMIT_REF_NAME are unset; give the image reference as "
                "an argument, e.g. registry-cleanup delete registry.example.com/group/app:my-branch"
            )
        slug = slugify(self.ref_name)
        if not slug:
            raise InputError(
                f"CI_COMMIT_REF_NAME {self.ref_name!r} has an empty slug; nothing to delete "
                "(an empty tag would mean 'latest')"
            )
        return slug

    def target_ref(self, explicit: str | None) -> ImageRef:
        """The image to delete: the argument if given, else $CI_REGISTRY_IMAGE:<branch slug>."""
        if explicit is not None:
            return parse_image_ref(explicit)
        if self.registry_image is None:
            raise InputError(
                "CI_REGISTRY_IMAGE is unset; give the image reference as an argument, "
                "e.g. registry-cleanup delete registry.example.com/group/app:my-branch"
            )
        return with_tag(self.registry_image, self.branch_tag(), what="CI_REGISTRY_IMAGE")

    def default_branch_slug(self) -> str | None:
        return slugify(self.default_branch) if self.default_branch else None

    def is_default_branch_pipeline(self) -> bool:
        """True when this job runs for the default branch itself."""
        if self.default_branch is None:
            return False
        return self.default_branch in (self.ref_name, self.branch)
