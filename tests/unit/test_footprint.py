"""The storage figures' arithmetic (domain/footprint.py) and how people read them
(output/figures.py), on manifests written here."""

from __future__ import annotations

import json

from registry_cleanup.domain.footprint import footprint, occupied, parse_manifest
from registry_cleanup.domain.image_age import manifest_digest
from registry_cleanup.output.figures import decimal_size, figure_line
from registry_cleanup.output.group_report import group_document


def blob(name: str) -> str:
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


def image(*layers: tuple[str, int], config: tuple[str, int] = ("config", 10)) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": blob(config[0]), "size": config[1]},
            "layers": [{"digest": blob(name), "size": size} for name, size in layers],
        }
    ).encode()


def index(*children: bytes) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"digest": manifest_digest(child), "size": len(child)} for child in children
            ],
        }
    ).encode()


def read(*bodies: bytes):
    return {manifest.digest: manifest for manifest in map(parse_manifest, bodies)}


def test_an_image_occupies_its_manifest_config_and_layers_each_once():
    body = image(("base", 100), ("app", 7), ("base", 100), config=("c1", 3))
    assert occupied(manifest_digest(body), read(body)) == {
        manifest_digest(body): len(body),
        blob("c1"): 3,
        blob("base"): 100,
        blob("app"): 7,
    }


def test_an_index_occupies_its_platform_images_and_is_unknown_when_one_is_unread():
    amd, arm = image(("amd", 50), config=("ca", 1)), image(("arm", 60), config=("cb", 2))
    top = index(amd, arm)
    whole = occupied(manifest_digest(top), read(top, amd, arm))
    assert whole is not None
    assert sum(whole.values()) == len(top) + len(amd) + len(arm) + 50 + 60 + 1 + 2
    assert occupied(manifest_digest(top), read(top, amd)) is None


def test_what_a_deletion_frees_is_what_no_kept_image_references():
    main = image(("base", 1000), ("main", 10), config=("cm", 1))
    gone = image(("base", 1000), ("gone", 20), config=("cg", 2))
    dead_a = image(("shared", 300), ("a", 5), config=("ca", 3))
    dead_b = image(("shared", 300), ("b", 6), config=("cb", 4))
    manifests = read(main, gone, dead_a, dead_b)
    tags = {
        "main": manifest_digest(main),
        "copy-of-main": manifest_digest(main),
        "gone": manifest_digest(gone),
        "dead-a": manifest_digest(dead_a),
        "dead-b": manifest_digest(dead_b),
        "unread": None,
    }

    figures = footprint(tags, {"copy-of-main", "gone", "dead-a", "dead-b", "unread"}, manifests)

    freed = (len(gone) + 20 + 2) + (len(dead_a) + len(dead_b) + 300 + 5 + 6 + 3 + 4)
    assert figures.reclaimable_bytes == freed
    assert figures.kept_bytes == len(main) + 1000 + 10 + 1
    assert figures.size_unknown == 1
    assert figures.tag_bytes["copy-of-main"] == figures.tag_bytes["main"]
    assert figures.tag_bytes["unread"] is None


def test_gitlabs_reported_size_is_used_for_what_is_kept():
    body = image(("layer", 500))
    tags = {"gone": manifest_digest(body)}
    planned = footprint(tags, {"gone"}, read(body), reported_size=10_000)
    assert planned.kept_bytes == 10_000 - planned.reclaimable_bytes
    done = footprint(tags, {"gone"}, read(body), reported_size=9_000, reported_after=True)
    assert done.kept_bytes == 9_000


def test_a_malformed_manifest_is_its_own_bytes_only():
    body = b'{"layers": [{"digest": 5, "size": "big"}, {"digest": "sha256:x", "size": -1}]}'
    assert occupied(manifest_digest(body), read(body)) == {manifest_digest(body): len(body)}
    assert parse_manifest(b"not json").size == len(b"not json")


def test_sizes_read_as_storage_is_counted():
    assert decimal_size(0) == "0 B"
    assert decimal_size(999) == "999 B"
    assert decimal_size(3_400_000_000) == "3.4 GB"
    assert decimal_size(1_500) == "1.5 kB"
    assert decimal_size(7 * 10**18) == "7000.0 PB"


def test_the_one_line_figure():
    document = {
        "dry_run": False,
        "summary": {"deleted": 3, "reclaimable_bytes": 3_400_000_000, "kept_bytes": 1_700_000_000},
        "repositories": [{}, {}],
    }
    assert figure_line(document) == "frees about 3.4 GB of 5.1 GB in 2 repositories"
    document["summary"]["size_unknown"] = 2
    document["dry_run"] = True
    assert figure_line(document) == (
        "would free at least 3.4 GB of 5.1 GB in 2 repositories (2 tags of unknown size)"
    )
    assert figure_line({"summary": {"deleted": 1}}) is None


def test_a_sized_group_report_ranks_projects_by_what_they_free():
    def section(name: str, freed: int) -> dict[str, object]:
        summary = {"deleted": 1, "reclaimable_bytes": freed, "kept_bytes": 5, "size_unknown": 0}
        return {"project": name, "summary": summary, "tags": [], "repositories": [{}]}

    merged = group_document("g", True, [section("a", 10), section("b", 300), section("c", 20)])

    assert [p["project"] for p in merged["projects"]] == ["b", "c", "a"]
    assert merged["summary"]["reclaimable_bytes"] == 330
    assert merged["summary"]["deleted"] == 3
    assert figure_line(merged) == "would free about 330 B of 345 B in 3 repositories"
