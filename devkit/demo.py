"""The demo behind `./dev demo`: the cleanup job end to end against a local registry.

It starts a real registry, pushes the images a default-branch pipeline and a feature-branch
pipeline would push, then runs `registry-cleanup delete` with the variables GitLab gives each
pipeline's cleanup job, and shows the tags before and after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, registry_environment

REPOSITORY = "demo-group/demo-app"
FEATURE_BRANCH = "Feature/Login-Page"


def _tool(name: str) -> str:
    sibling = Path(sys.executable).parent / name
    found = str(sibling) if sibling.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"demo: {name} is not installed; run ./dev setup")
    return found


def _show_tags(registry: LocalRegistry, when: str) -> None:
    print(f"\n  tags {when}:")
    for tag in registry.tags(REPOSITORY):
        digest = registry.digest(REPOSITORY, tag) or "?"
        print(f"    {tag:<24} {digest[:19]}…")


def _run_cleanup_job(registry: LocalRegistry, title: str, branch: str) -> int:
    env = {
        **registry_environment(),
        "REGISTRY_CLEANUP_REGCTL": _tool("regctl"),
        # What GitLab sets in the job (CI_COMMIT_REF_SLUG left out: the CLI derives it).
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_IMAGE": f"{registry.host}/{REPOSITORY}",
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "CI_COMMIT_REF_NAME": branch,
        "CI_COMMIT_BRANCH": branch,
        "CI_DEFAULT_BRANCH": "main",
        # The local registry speaks plain HTTP; GitLab's registry needs no such setting.
        "REGISTRY_CLEANUP_TLS": "disabled",
    }
    print(f"\n$ registry-cleanup delete      # {title} (CI_COMMIT_REF_NAME={branch})")
    completed = subprocess.run([_tool("registry-cleanup"), "delete"], env=env, check=False)
    print(f"  exit code {completed.returncode}")
    return completed.returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="registry-cleanup-demo-") as scratch:
        root = Path(scratch)
        with (
            LocalRegistry(root / "registry") as registry,
            ImagePusher(registry, _tool("regctl")) as pusher,
        ):
            print(f"registry-cleanup demo: a local registry at {registry.host}")
            print("\nPipelines pushed $CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG for two branches:")
            pusher.push(REPOSITORY, "main")
            pusher.push(REPOSITORY, "feature-login-page")
            # A release tag on the feature's image, to show that a shared digest survives.
            pusher.tag(REPOSITORY, "feature-login-page", "v1.0.0")
            _show_tags(registry, "before")

            feature = _run_cleanup_job(registry, "the feature branch was deleted", FEATURE_BRANCH)
            repeat = _run_cleanup_job(registry, "the same job again", FEATURE_BRANCH)
            default = _run_cleanup_job(registry, "a default-branch pipeline", "main")
            _show_tags(registry, "after")

            remaining = registry.tags(REPOSITORY)
            ok = feature == repeat == default == 0 and remaining == ["main", "v1.0.0"]
            print("\ndemo:", "ok" if ok else "UNEXPECTED RESULT")
            return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
