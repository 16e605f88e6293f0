"""Shared pieces of the reliability tests: a seeded repository and a job pointed at a proxy."""

from __future__ import annotations

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from tests.conftest import ci_env
from tests.support.fault_proxy import FaultProxy

REPO = "group/app"
TARGET = "feature-x"


def seed(pusher: ImagePusher) -> dict[str, str]:
    """The branch tag to delete, a tag sharing its digest, the default branch, another branch."""
    digests = {
        TARGET: pusher.push(REPO, TARGET),
        "main": pusher.push(REPO, "main"),
        "other-branch": pusher.push(REPO, "other-branch"),
    }
    digests["pinned"] = pusher.tag(REPO, TARGET, "pinned")
    return digests


def state(registry: LocalRegistry, repository: str = REPO) -> dict[str, str | None]:
    """Every tag and the digest it points at, read from the registry directly."""
    return {tag: registry.digest(repository, tag) for tag in registry.tags(repository)}


def job_env(registry: LocalRegistry, proxy: FaultProxy, **extra: str) -> dict[str, str]:
    """A branch pipeline's variables for TARGET, with the registry reached through ``proxy``."""
    return {
        **ci_env(registry, CI_COMMIT_REF_NAME=TARGET, CI_COMMIT_BRANCH=TARGET),
        "CI_REGISTRY": proxy.host,
        "CI_REGISTRY_IMAGE": f"{proxy.host}/{REPO}",
        **extra,
    }
