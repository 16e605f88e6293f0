"""image_age: an image index's platform images, attestations left out, and the newest time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devkit.images import OCI_MANIFEST, Blob, buildx_blobs, image_blobs, multi_platform_blobs
from registry_cleanup.domain.image_age import (
    image_age,
    manifest_digest,
    parse_created,
    platform_images,
)


def _configs(blobs: list[Blob]) -> dict[str, datetime | None]:
    """Platform manifest digest -> its config's created, from the blobs devkit wrote."""
    by_digest = {blob.digest: blob for blob in blobs}
    found = {}
    for blob in blobs:
        if blob.media_type != OCI_MANIFEST:
            continue
        body = json.loads(blob.data)
        if "created" in json.loads(by_digest[body["config"]["digest"]].data):
            config = json.loads(by_digest[body["config"]["digest"]].data)
            found[blob.digest] = parse_created(config.get("created"))
    return found


def test_a_buildx_index_is_as_old_as_its_newest_platform_image() -> None:
    index, blobs = buildx_blobs(
        "app", {"amd64": "2026-01-01T00:00:00Z", "arm64": "2026-03-01T12:00:00Z"}
    )
    configs = _configs(blobs)
    asked: list[str] = []

    def created_of(digest: str) -> datetime | None:
        asked.append(digest)
        return configs[digest]

    found = image_age(index.data, created_of)

    assert found.digest == index.digest
    assert found.created_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    # Two platform images read, the two attestation manifests not.
    platforms = platform_images(json.loads(index.data))
    assert platforms is not None
    assert len(platforms) == 2
    assert asked == platforms


def test_an_attestation_is_told_by_its_platform_or_its_annotation() -> None:
    entries = [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "unknown", "architecture": "unknown"}},
        {
            "digest": "sha256:" + "c" * 64,
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        },
    ]
    assert platform_images({"manifests": entries}) == ["sha256:" + "a" * 64]


def test_a_single_image_is_dated_by_its_own_config() -> None:
    manifest, blobs = image_blobs("app", created="2026-02-02T02:02:02Z")
    configs = _configs([manifest, *blobs])

    found = image_age(manifest.data, lambda digest: configs[digest])

    assert found.digest == manifest_digest(manifest.data) == manifest.digest
    assert found.created_at == datetime(2026, 2, 2, 2, 2, 2, tzinfo=UTC)


def test_an_index_no_config_dates_has_no_age() -> None:
    index, _ = multi_platform_blobs("app")

    found = image_age(index.data, lambda digest: None)

    assert found.digest == index.digest
    assert found.created_at is None


def test_created_times_that_cannot_be_read_are_unknown() -> None:
    assert parse_created(None) is None
    assert parse_created("") is None
    assert parse_created("yesterday") is None
    assert parse_created("2026-01-01T00:00:00.5Z") == datetime(2026, 1, 1, 0, 0, 0, 500000, UTC)
