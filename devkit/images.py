"""Real OCI images, written as an OCI layout and pushed with ``regctl image copy``.

Each image is tiny (one small layer) but complete, so every registry and regctl code path
sees what a real build pushes. Content is derived from a seed, so digests are distinct per
seed and identical for the same seed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from devkit.local_registry import LocalRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# A fixed time keeps digests reproducible.
CREATED = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


def _layer(seed: str) -> tuple[Blob, str]:
    """A gzip'd tar with one file; returns the blob and its uncompressed diff ID."""
    content = f"image {seed}\n".encode()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as archive:
        info = tarfile.TarInfo("seed.txt")
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    raw = tar_bytes.getvalue()
    compressed = gzip.compress(raw, mtime=0)
    return Blob(OCI_LAYER_GZIP, compressed), "sha256:" + hashlib.sha256(raw).hexdigest()


def image_blobs(
    seed: str,
    *,
    architecture: str = "amd64",
    created: str = CREATED,
    layers: tuple[str, ...] | None = None,
) -> tuple[Blob, list[Blob]]:
    """One platform image: its manifest and every blob it references. ``layers`` names each
    layer's seed, bottom first: images given the same seed share that layer, as images built
    on one base share its layers; by default one layer of the image's own."""
    made = [_layer(layer_seed) for layer_seed in (layers or (f"{seed}/{architecture}",))]
    config = Blob(
        OCI_CONFIG,
        json.dumps(
            {
                "created": created,
                "architecture": architecture,
                "os": "linux",
                "config": {"Labels": {"org.example.seed": seed}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in made]},
                "history": [{"created": created, "created_by": "devkit.images"}],
            },
            sort_keys=True,
        ).encode(),
    )
    blobs = [layer for layer, _ in made]
    return _oci_manifest(config, [layer.descriptor() for layer in blobs]), [config, *blobs]


def _oci_manifest(config: Blob, layers: list[dict[str, object]]) -> Blob:
    """An OCI image manifest of ``config`` and the layers' descriptors."""
    return Blob(
        OCI_MANIFEST,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": layers,
            },
            sort_keys=True,
        ).encode(),
    )


def multi_platform_blobs(
    seed: str,
    architectures: tuple[str, ...] = ("amd64", "arm64"),
) -> tuple[Blob, list[Blob]]:
    """An image index over one image per architecture, and every blob below it."""
    children: list[dict[str, object]] = []
    blobs: list[Blob] = []
    for architecture in architectures:
        manifest, referenced = image_blobs(seed, architecture=architecture)
        children.append(manifest.descriptor(platform={"architecture": architecture, "os": "linux"}))
        blobs += [manifest, *referenced]
    index = Blob(
        OCI_INDEX,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": children,
            },
            sort_keys=True,
        ).encode(),
    )
    return index, blobs


def buildx_blobs(seed: str, platforms: dict[str, str]) -> tuple[Blob, list[Blob]]:
    """What ``docker buildx build --push`` writes: an OCI index over one image per platform
    (architecture -> the ``created`` of its config), each followed by its provenance
    attestation manifest (platform ``unknown/unknown``, ``vnd.docker.reference.type:
    attestation-manifest``, ``vnd.docker.reference.digest`` naming the image it attests)."""
    children: list[dict[str, object]] = []
    blobs: list[Blob] = []
    for architecture, created in platforms.items():
        manifest, referenced = image_blobs(seed, architecture=architecture, created=created)
        children.append(manifest.descriptor(platform={"architecture": architecture, "os": "linux"}))
        blobs += [manifest, *referenced]
        statement = Blob(
            "application/vnd.in-toto+json",
            json.dumps(
                {
                    "_type": "https://in-toto.io/Statement/v0.1",
                    "predicateType": "https://slsa.dev/provenance/v0.2",
                    "subject": [{"name": seed, "digest": {"sha256": manifest.digest[7:]}}],
                    "predicate": {"builder": {"id": "devkit.images"}},
                },
                sort_keys=True,
            ).encode(),
        )
        config = Blob(
            OCI_CONFIG,
            json.dumps(
                {
                    "architecture": "unknown",
                    "os": "unknown",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [statement.digest]},
                },
                sort_keys=True,
            ).encode(),
        )
        predicate = {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
        attestation = _oci_manifest(config, [statement.descriptor(annotations=predicate)])
        children.append(
            attestation.descriptor(
                platform={"architecture": "unknown", "os": "unknown"},
                annotations={
                    "vnd.docker.reference.digest": manifest.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
            )
        )
        blobs += [attestation, config, statement]
    index = Blob(
        OCI_INDEX,
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, sort_keys=True
        ).encode(),
    )
    return index, blobs


def write_layout(directory: Path, top: Blob, blobs: list[Blob], tag: str) -> None:
    """Write an OCI image layout whose index.json names ``top`` as ``tag``."""
    blob_dir = directory / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for blob in [top, *blobs]:
        (blob_dir / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (directory / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    top.descriptor(annotations={"org.opencontainers.image.ref.name": tag})
                ],
            }
        )
    )


def _tls_settings(registry: LocalRegistry) -> dict[str, str]:
    """regctl's host settings for the registry: plain HTTP, or TLS verified with its CA."""
    if registry.tls is None:
        return {"tls": "disabled"}
    return {"tls": "enabled", "regcert": registry.tls.ca.read_text()}


class ImagePusher:
    """Pushes generated images to a LocalRegistry with regctl, using its own private config."""

    def __init__(self, registry: LocalRegistry, regctl: str = "regctl") -> None:
        self.registry = registry
        self._regctl = regctl
        self._workdir = Path(tempfile.mkdtemp(prefix="devkit-images-"))
        self._config = self._workdir / "regctl.json"
        self._config.write_text(
            json.dumps(
                {
                    "incDockerCred": False,
                    "incDockerCert": False,
                    "hosts": {
                        registry.host: {
                            **_tls_settings(registry),
                            "user": registry.username,
                            "pass": registry.password,
                        }
                    },
                }
            )
        )
        self._config.chmod(0o600)
        self._count = 0

    def __enter__(self) -> ImagePusher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        import shutil

        shutil.rmtree(self._workdir, ignore_errors=True)

    def regctl(self, *args: str) -> str:
        env = {**os.environ, "REGCTL_CONFIG": str(self._config)}
        env.pop("DOCKER_AUTH_CONFIG", None)
        completed = subprocess.run(
            [self._regctl, *args], capture_output=True, text=True, env=env, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(f"regctl {' '.join(args)}: {completed.stderr.strip()}")
        return completed.stdout

    def push(
        self,
        repository: str,
        tag: str,
        *,
        seed: str | None = None,
        multi_platform: bool = False,
        created: str = CREATED,
        layers: tuple[str, ...] | None = None,
    ) -> str:
        """Push a generated image as ``repository:tag``; returns its digest. ``layers``: the
        seeds of its layers (image_blobs), to share some with other images."""
        seed = seed if seed is not None else f"{repository}:{tag}"
        top, blobs = (
            multi_platform_blobs(seed)
            if multi_platform
            else image_blobs(seed, created=created, layers=layers)
        )
        return self._push_blobs(repository, tag, top, blobs)

    def push_buildx(self, repository: str, tag: str, platforms: dict[str, str]) -> str:
        """Push what ``docker buildx build --push`` would (buildx_blobs); returns its digest."""
        top, blobs = buildx_blobs(f"{repository}:{tag}:{sorted(platforms.items())}", platforms)
        return self._push_blobs(repository, tag, top, blobs)

    def _push_blobs(self, repository: str, tag: str, top: Blob, blobs: list[Blob]) -> str:
        """Write ``top`` and its blobs as an OCI layout and copy it to ``repository:tag``."""
        self._count += 1
        layout = self._workdir / f"layout-{self._count}"
        write_layout(layout, top, blobs, tag)
        self.regctl(
            "image", "copy", f"ocidir://{layout}:{tag}", f"{self.registry.host}/{repository}:{tag}"
        )
        return top.digest

    def tag(self, repository: str, source_tag: str, new_tag: str) -> str:
        """Give an existing image a second tag (same digest)."""
        host = self.registry.host
        self.regctl(
            "image", "copy", f"{host}/{repository}:{source_tag}", f"{host}/{repository}:{new_tag}"
        )
        digest = self.registry.digest(repository, new_tag)
        if digest is None:
            raise RuntimeError(f"{repository}:{new_tag} is missing right after it was tagged")
        return digest
