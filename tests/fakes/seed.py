"""Seeding the emulator's registry with images whose creation time the test chooses."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from devkit.images import ImagePusher, image_blobs, write_layout
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
