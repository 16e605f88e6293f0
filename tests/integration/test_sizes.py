"""``sweep --sizes``: what a cleanup frees, against distribution v3 (GitLab's registry's delete).

The figures are checked two independent ways: against the manifests read here straight from
the registry (a walk of its own, not the product's), and against what the registry's own
garbage collector then really removes from disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, free_port
from tests.conftest import RunCli, ci_env
from tests.fakes.fixtures import TokenAuth
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.integration.test_sweep import api_env
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_gc import garbage_collect

REPO = "group/app"
SWEEP = ("sweep", "--min-age", "0m", "--json", "--sizes")
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def attached(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


# -- the independent side: the registry's manifests, walked here ------------------------------


def occupied(registry: LocalRegistry, repository: str, reference: str) -> dict[str, int]:
    """Everything ``reference`` names in the registry: digest -> bytes, each once."""
    found: dict[str, int] = {}
    waiting = [reference]
    while waiting:
        current = waiting.pop()
        status, headers, body = registry.request(
            "GET", f"/v2/{repository}/manifests/{current}", {"Accept": ACCEPT}
        )
        assert status == 200, (current, status)
        digest = headers.get("Docker-Content-Digest") or headers["docker-content-digest"]
        found[digest] = len(body)
        manifest = json.loads(body)
        for child in manifest.get("manifests", []):
            waiting.append(child["digest"])
        for blob in [manifest["config"], *manifest["layers"]] if "config" in manifest else []:
            found[blob["digest"]] = blob["size"]
    return found


def union(images: Iterable[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for image in images:
        merged |= image
    return merged


def blob_store_bytes(registry: LocalRegistry) -> int:
    """What the registry holds on disk: every blob's data, manifests included."""
    blobs = registry.root / "data" / "docker" / "registry" / "v2" / "blobs"
    return sum(data.stat().st_size for data in blobs.rglob("data"))


# -- the world -------------------------------------------------------------------------------


def seed_shared_layers(emulator: GitLabEmulator, pusher: ImagePusher) -> tuple[Project, set[str]]:
    """Kept and deleted images sharing a base layer, a re-tagged kept image, two orphans sharing
    a layer no kept image has, a multi-platform index, a buildx index with its attestation and a
    cosign signature. Returns the project and the tags the sweep deletes."""
    project = emulator.add_project(REPO, default_branch="main", branches=["main", "feature/live"])
    emulator.add_repository(project)
    pusher.push(REPO, "main", layers=("base", "main-app"))
    pusher.push(REPO, "feature-live", layers=("base", "live-app"))
    gone = pusher.push(REPO, "feature-gone", layers=("base", "gone-app"))
    pusher.tag(REPO, "main", "old-copy-of-main")
    pusher.push(REPO, "dead-a", layers=("base", "dead-shared", "dead-a"))
    pusher.push(REPO, "dead-b", layers=("base", "dead-shared", "dead-b"))
    pusher.push(REPO, "feature-multi", multi_platform=True)
    pusher.push_buildx(REPO, "feature-buildx", {"amd64": "2026-01-02T00:00:00Z"})
    signature = attached(gone, ".sig")
    pusher.push(REPO, signature)
    deleted = {
        "feature-gone",
        "old-copy-of-main",
        "dead-a",
        "dead-b",
        "feature-multi",
        "feature-buildx",
        signature,
    }
    return project, deleted


def sized_env(emulator: GitLabEmulator, project: Project, registry_host: str) -> dict[str, str]:
    token = emulator.personal_token(project, Role.developer)
    env = {**ci_env(emulator.store.registry), **api_env(emulator, project, token)}
    env["CI_REGISTRY"] = registry_host
    return env


def test_the_figures_are_what_the_manifests_say_and_what_garbage_collection_frees(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    registry = pusher.registry
    project, deleted = seed_shared_layers(gitlab_emulator, pusher)
    tags = registry.tags(REPO)
    images = {tag: occupied(registry, REPO, tag) for tag in tags}
    kept = union(images[tag] for tag in tags if tag not in deleted)
    freed = union(images[tag] for tag in deleted)
    reclaimable = sum(size for digest, size in freed.items() if digest not in kept)
    env = sized_env(gitlab_emulator, project, registry.host)

    dry = run_cli(*SWEEP, env=env)

    assert dry.returncode == 0, dry.stderr
    document = json.loads(dry.stdout)
    planned = {t["tag"]: t for t in document["tags"]}
    assert {tag for tag, t in planned.items() if t["status"] == "would-delete"} == deleted
    # Shared layers count once, and only where no kept image has them: the base layer stays,
    # the re-tagged main frees nothing, the two dead images' shared layer goes once.
    assert document["summary"]["reclaimable_bytes"] == reclaimable
    assert document["summary"]["kept_bytes"] == sum(kept.values())
    assert document["summary"]["size_unknown"] == 0
    (repository,) = document["repositories"]
    assert repository == {
        "location": f"{registry.host}/{REPO}",
        "reclaimable_bytes": reclaimable,
        "kept_bytes": sum(kept.values()),
        "size_unknown": 0,
    }
    # Each tag's size is its whole image: an index with its platform images and attestations.
    assert {tag: t["size_bytes"] for tag, t in planned.items()} == {
        tag: sum(image.values()) for tag, image in images.items()
    }
    assert len(images["feature-multi"]) == 7  # index, 2 x (manifest, config, layer)
    assert len(images["feature-buildx"]) == 7  # index, image (3), attestation (3)
    assert "an upper bound" in dry.stderr
    gb = f"{reclaimable / 1000:.1f} kB"
    whole = f"{(reclaimable + sum(kept.values())) / 1000:.1f} kB"
    assert dry.stderr.splitlines()[-1] == (
        f"registry-cleanup: would free about {gb} of {whole} in 1 repository"
    )

    done = run_cli(*SWEEP, "--delete", env=env)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {t["tag"] for t in result["tags"] if t["status"] == "deleted"} == deleted
    assert result["summary"]["reclaimable_bytes"] == reclaimable
    assert result["summary"]["kept_bytes"] == sum(kept.values())
    before = blob_store_bytes(registry)
    garbage_collect(registry)
    # The registry's own collector frees exactly that, and keeps exactly the rest.
    assert before - blob_store_bytes(registry) == reclaimable
    assert blob_store_bytes(registry) == sum(kept.values())


def test_an_unreadable_manifest_makes_its_tag_unknown_and_the_total_at_least(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    registry = pusher.registry
    project = gitlab_emulator.add_project(REPO, default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main", layers=("base", "main-app"))
    pusher.push(REPO, "feature-gone", layers=("base", "gone-app"))
    hidden = pusher.push(REPO, "feature-hidden", multi_platform=True)
    index = json.loads(
        registry.request("GET", f"/v2/{REPO}/manifests/{hidden}", {"Accept": ACCEPT})[2]
    )
    # One platform image of the index cannot be read: the registry refuses it.
    refused = index["manifests"][1]["digest"]
    with FaultProxy(registry.host) as proxy:
        proxy.add(Fault.respond(403, methods={"GET"}, path=f"/manifests/{refused}", times=None))
        gitlab_emulator.registry_host = proxy.host
        env = sized_env(gitlab_emulator, project, proxy.host)

        dry = run_cli(*SWEEP, env=env)

    assert dry.returncode == 0, dry.stderr
    document = json.loads(dry.stdout)
    sizes = {t["tag"]: t["size_bytes"] for t in document["tags"]}
    assert sizes["feature-hidden"] is None
    assert sizes["feature-gone"] == sum(occupied(registry, REPO, "feature-gone").values())
    assert document["summary"]["size_unknown"] == 1
    gone_only = {
        digest: size
        for digest, size in occupied(registry, REPO, "feature-gone").items()
        if digest not in occupied(registry, REPO, "main")
    }
    assert document["summary"]["reclaimable_bytes"] == sum(gone_only.values())
    last = dry.stderr.splitlines()[-1]
    assert last.startswith("registry-cleanup: would free at least "), last
    assert last.endswith(" in 1 repository (1 tag of unknown size)"), last
    assert proxy.changes() == []


def test_without_sizes_the_registry_is_not_read(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
):
    registry = pusher.registry
    project = gitlab_emulator.add_project(REPO, default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main")
    pusher.push(REPO, "feature-gone")
    with FaultProxy(registry.host) as proxy:
        gitlab_emulator.registry_host = proxy.host
        env = sized_env(gitlab_emulator, project, proxy.host)

        plain = run_cli("sweep", "--min-age", "0m", "--json", env=env)

    assert plain.returncode == 0, plain.stderr
    document = json.loads(plain.stdout)
    assert "reclaimable_bytes" not in document["summary"]
    assert "repositories" not in document
    assert all("size_bytes" not in tag for tag in document["tags"])
    assert proxy.seen() == []


def test_a_group_sweep_ranks_projects_by_what_they_free_through_token_auth(
    token_auth: TokenAuth, run_cli: RunCli
):
    """GitLab's registry trusts only /jwt/auth's tokens: one pull token per repository."""
    emulator, registry, pusher = token_auth.emulator, token_auth.registry, token_auth.pusher
    acme = emulator.add_group("acme")
    small, big = "acme/small", "acme/sub/big"
    for path, layers in ((small, ("tiny",)), (big, ("huge-1", "huge-2", "huge-3"))):
        project = emulator.add_project(path, default_branch="main", branches=["main"])
        emulator.add_repository(project)
        pusher.push(path, "main", layers=("base",))
        pusher.push(path, "gone", layers=("base", *layers))
    token = emulator.group_token(acme, Role.maintainer)
    env = {
        "CI_API_V4_URL": emulator.url,
        "GITLAB_TOKEN": token,
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": "group-bot",
        "CI_REGISTRY_PASSWORD": token,
        "REGISTRY_CLEANUP_TLS": "disabled",
    }
    issuer = emulator.issuer
    assert issuer is not None

    result = run_cli("sweep", "--group", "acme", "--min-age", "0m", "--json", "--sizes", env=env)
    tokens_taken = issuer.issued_to.count("group-bot")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [p["project"] for p in document["projects"]] == [big, small]
    freed = {}
    for path in (small, big):
        kept = occupied(registry, path, "main")
        gone = occupied(registry, path, "gone")
        freed[path] = sum(size for digest, size in gone.items() if digest not in kept)
    for section in document["projects"]:
        assert section["summary"]["reclaimable_bytes"] == freed[section["project"]]
    assert document["summary"]["reclaimable_bytes"] == sum(freed.values())
    assert tokens_taken == 2
    assert token not in result.output
    assert "in 2 repositories" in result.stderr.splitlines()[-1]


def test_an_unreachable_registry_leaves_every_size_unknown_and_the_sweep_done(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main")
    pusher.push(REPO, "feature-gone")
    closed = f"127.0.0.1:{free_port()}"
    gitlab_emulator.registry_host = closed
    env = sized_env(gitlab_emulator, project, closed)

    dry = run_cli(*SWEEP, env=env)

    assert dry.returncode == 0, dry.stderr
    document = json.loads(dry.stdout)
    assert document["summary"]["size_unknown"] == 2
    assert document["summary"]["reclaimable_bytes"] == 0
    assert dry.stderr.splitlines()[-1].endswith("(2 tags of unknown size)")
