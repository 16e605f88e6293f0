"""Seeding the emulator's registry with images whose creation time the test chooses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devkit.images import ImagePusher, image_blobs, write_layout
from devkit.seeding import seed_tags
from tests.fakes.registry_metadata import set_pushed_at


def push_created(
    pusher: ImagePusher, workdir: Path, repository: str, tag: str, created: datetime
) -> str:
    """Push a generated image whose config says it was created at ``created``; its digest.

    The push time the registry metadata database would record (registry_metadata.pushed_at)
    is set to ``created`` too, so age-based rules see the same age with and without it.
    """
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    top, blobs = image_blobs(f"{repository}:{tag}:{stamp}", created=stamp)
    layout = workdir / f"layout-{tag}-{stamp.replace(':', '')}"
    write_layout(layout, top, blobs, tag)
    pusher.regctl(
        "image", "copy", f"ocidir://{layout}:{tag}", f"{pusher.registry.host}/{repository}:{tag}"
    )
    set_pushed_at(pusher.registry, repository, tag, created)
    return top.digest


def seed_pushed_long_ago(
    pusher: ImagePusher, repository: str, tags: Sequence[str], *, ago: timedelta = timedelta(days=1)
) -> dict[str, str]:
    """devkit.seeding.seed_tags, with every tag pushed ``ago`` (GitLab's created_at is the push
    time: registry_metadata.py), so --min-age's grace period has passed; tag -> digest."""
    digests = seed_tags(pusher, repository, tags)
    moment = datetime.now(UTC) - ago
    for tag in tags:
        set_pushed_at(pusher.registry, repository, tag, moment)
    return digests
