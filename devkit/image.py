"""Builds the project's image here, from the Dockerfile the pipeline builds: `./dev image`.

This machine has no Docker engine and reaches no Docker Hub, so the Dockerfile's default base
(debian:13.7-slim pinned by digest) is replaced by an equivalent made with mmdebstrap from
Debian's mirror: trixie, minbase, the packages debian:*-slim holds. Debian's buildah (chroot
isolation, vfs storage) then builds linux/amd64 and linux/arm64 and the result is written to
an OCI layout under ~/.cache/registry-cleanup/image/KEY, KEY being a hash of everything the
build reads. A second build with the same inputs (the tests' one, or CI's clean clone on this
machine) reuses that layout; a fresh machine builds it.

    python -m devkit.image [--push REF] [--tls enabled|disabled]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cleanup.registry.hosts import is_loopback

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PLATFORMS = ("linux/amd64", "linux/arm64")
# The most one platform may weigh, compressed, as the registry stores it (image-size.sh).
BUDGET_BYTES = 35_000_000
DEBIAN_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# A TLS-inspecting proxy's CA lives here on some build machines; the builder base must trust
# it to reach PyPI and the Go proxy. The image's own bundle is made from Debian's certificates
# only (Dockerfile, rootfs stage), so it never carries these.
LOCAL_CA_DIRECTORY = Path("/usr/local/share/ca-certificates")
# debian:*-slim is debuerreotype's minbase without docs, man pages and locales; ca-certificates
# is added so the builder can trust LOCAL_CA_DIRECTORY (the stages install it anyway).
BASE_MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--mode=root",
    "--format=tar",
    "--include=ca-certificates",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
LAYOUT_TAG = "image"
# Layouts kept in the cache besides the newest: one per recent set of inputs.
CACHED_LAYOUTS = 3


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "registry-cleanup"


def say(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


def buildah(*args: str) -> list[str]:
    """A buildah command line: vfs storage and chroot isolation work as root with no daemon."""
    return ["buildah", "--storage-driver", "vfs", *args]


def _run(argv: Sequence[str], log: Path | None, **kwargs: object) -> None:
    """Run a build step; its output goes to ``log`` (the tests) or to stderr (`./dev image`)."""
    if log is None:
        completed = subprocess.run(argv, check=False, stdout=sys.stderr, **kwargs)  # type: ignore[call-overload]
    else:
        with log.open("ab") as output:
            completed = subprocess.run(  # type: ignore[call-overload]
                argv, check=False, stdout=output, stderr=subprocess.STDOUT, **kwargs
            )
    if completed.returncode != 0:
        where = f"; its output is in {log}" if log else ""
        raise SystemExit(f"image: `{' '.join(argv[:4])} ...` failed{where}")


def _digest_of(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()


def _local_ca_files() -> list[Path]:
    if not LOCAL_CA_DIRECTORY.is_dir():
        return []
    return sorted(p for p in LOCAL_CA_DIRECTORY.rglob("*.crt") if p.is_file())


# -- the builder base ---------------------------------------------------------------------


def base_image_name() -> str:
    """The local stand-in for the Dockerfile's DEBIAN_IMAGE, named after what makes it."""
    key = _digest_of(
        json.dumps([DEBIAN_SUITE, DEBIAN_MIRROR, *BASE_MMDEBSTRAP_OPTIONS]).encode(),
        *(p.read_bytes() for p in _local_ca_files()),
    )
    return f"localhost/registry-cleanup/debian-{DEBIAN_SUITE}:{key[:16]}"


def _image_exists(name: str) -> bool:
    probe = subprocess.run(
        buildah("inspect", "--type", "image", name), capture_output=True, check=False
    )
    return probe.returncode == 0


def ensure_base_image(log: Path | None = None) -> str:
    name = base_image_name()
    if _image_exists(name):
        say(f"reusing the builder base {name}")
        return name
    say(f"making the builder base {name} with mmdebstrap ({DEBIAN_SUITE}, minbase)")
    with tempfile.TemporaryDirectory(prefix="registry-cleanup-base-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        hooks: list[str] = []
        if _local_ca_files():
            hooks = [
                f"--customize-hook=sync-in {LOCAL_CA_DIRECTORY} {LOCAL_CA_DIRECTORY}",
                '--customize-hook=chroot "$1" update-ca-certificates',
            ]
        _run(
            [
                "mmdebstrap",
                *BASE_MMDEBSTRAP_OPTIONS,
                *hooks,
                DEBIAN_SUITE,
                str(tarball),
                DEBIAN_MIRROR,
            ],
            log,
        )
        container = subprocess.run(
            buildah("from", "scratch"), capture_output=True, text=True, check=True
        ).stdout.strip()
        try:
            _run(buildah("add", container, str(tarball), "/"), log)
            _run(
                buildah(
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--cmd",
                    "bash",
                    "--os",
                    "linux",
                    "--arch",
                    "amd64",
                    container,
                ),
                log,
            )
            _run(buildah("commit", "--quiet", container, name), log)
        finally:
            subprocess.run(buildah("rm", container), capture_output=True, check=False)
    return name


# -- the image ----------------------------------------------------------------------------


def context_files() -> list[Path]:
    """The files the build context lets in (.dockerignore is an allow-list of paths)."""
    allowed = [
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    ]
    files: list[Path] = []
    for entry in allowed:
        path = ROOT / entry
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files.extend(
            p
            for p in candidates
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    return files


@dataclass(frozen=True)
class BuildArgs:
    version: str
    revision: str
    source: str

    def as_flags(self, base: str) -> list[str]:
        pairs = {
            "DEBIAN_IMAGE": base,
            "VERSION": self.version,
            "REVISION": self.revision,
            "SOURCE": self.source,
        }
        return [flag for key, value in pairs.items() for flag in ("--build-arg", f"{key}={value}")]


def default_build_args() -> BuildArgs:
    """The version from the package; the revision is the last commit that changed an input.

    Not simply HEAD: a commit that touches only tests or docs builds the same image, so it keeps
    the same revision label and the same cache key, and CI's clean clone reuses the build.
    """
    init = (ROOT / "entrypoint/registry_cleanup/__init__.py").read_text()
    version = next(
        line.split('"')[1] for line in init.splitlines() if line.startswith("__version__")
    )
    inputs = [DOCKERFILE, DOCKERIGNORE, Path(__file__), *context_files()]
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%H", "--", *map(str, inputs)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return BuildArgs(version=version, revision=revision or "unknown", source="unknown")


def inputs_key(base: str, args: BuildArgs) -> str:
    """Everything the build reads: a change to any of it means a new build."""
    files = [DOCKERFILE, DOCKERIGNORE, *context_files()]
    return _digest_of(
        json.dumps([base, args.version, args.revision, args.source, PLATFORMS]).encode(),
        # How this module drives buildah is an input too.
        Path(__file__).read_bytes(),
        *(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() for p in files),
    )[:32]


@dataclass(frozen=True)
class PlatformSize:
    platform: str
    digest: str
    compressed_bytes: int


@dataclass(frozen=True)
class BuiltImage:
    layout: Path
    key: str

    @property
    def reference(self) -> str:
        """regctl's name for the multi-platform index in the OCI layout."""
        return f"ocidir://{self.layout}:{LAYOUT_TAG}"

    def _blob(self, digest: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self._blob_path(digest).read_text())
        return loaded

    def _index(self) -> dict[str, Any]:
        top = json.loads((self.layout / "index.json").read_text())
        for entry in top["manifests"]:
            if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == LAYOUT_TAG:
                return self._blob(entry["digest"])
        raise RuntimeError(f"{self.layout} has no image tagged {LAYOUT_TAG}")

    def layers(self, platform: str) -> list[Path]:
        """The platform's layer blobs (gzipped tars), in order."""
        for entry in self._index()["manifests"]:
            if f"{entry['platform']['os']}/{entry['platform']['architecture']}" == platform:
                manifest = self._blob(entry["digest"])
                return [self._blob_path(layer["digest"]) for layer in manifest["layers"]]
        raise RuntimeError(f"{self.layout} has no {platform} image")

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.layout / "blobs" / algorithm / hexdigest

    def sizes(self) -> list[PlatformSize]:
        """Each platform's compressed size: the sum of its manifest's layer sizes."""
        result = []
        for entry in self._index()["manifests"]:
            platform = f"{entry['platform']['os']}/{entry['platform']['architecture']}"
            layers = self._blob(entry["digest"])["layers"]
            total = sum(int(layer["size"]) for layer in layers)
            result.append(PlatformSize(platform, entry["digest"], total))
        return sorted(result, key=lambda size: PLATFORMS.index(size.platform))


def _prune_cache(directory: Path, keep: Path) -> None:
    layouts = sorted(
        (p for p in directory.iterdir() if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in layouts[CACHED_LAYOUTS:]:
        shutil.rmtree(stale, ignore_errors=True)


def _arch(platform: str) -> str:
    return platform.split("/")[1]


def build_platform() -> str:
    """This machine's platform: every stage but the last runs here, for any target."""
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    return f"linux/{machine}"


def _build_platform(
    platform: str,
    key: str,
    base: str,
    args: BuildArgs,
    layout: Path,
    regctl: str,
    log: Path | None,
) -> None:
    """One platform into ``layout`` under the tag of its architecture.

    buildah 1.28 looks for a base image of the target's architecture even for the
    `FROM --platform=${BUILDPLATFORM}` stages, which is what keeps arm64 free of emulation. So it
    builds for this machine's platform with the target named in the TARGET* build args (what
    BuildKit sets by itself), and regctl then writes the target's platform into the image config.
    """
    os_name, arch = platform.split("/")
    name = f"localhost/registry-cleanup:{key}-{arch}"
    say(f"building {platform} on {build_platform()} with buildah")
    targets = {"TARGETPLATFORM": platform, "TARGETOS": os_name, "TARGETARCH": arch}
    _run(
        buildah(
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            # A failed step's containers are full copies under vfs: never leave them behind.
            "--force-rm",
            "--pull-never",
            "--format",
            "oci",
            "--platform",
            build_platform(),
            *args.as_flags(base),
            *(flag for k, v in targets.items() for flag in ("--build-arg", f"{k}={v}")),
            "--tag",
            name,
            "--file",
            str(DOCKERFILE),
            str(ROOT),
        ),
        log,
    )
    try:
        _run(buildah("push", "--quiet", name, f"oci:{layout}:{arch}"), log)
    finally:
        # The stages stay in buildah's layer cache; the final image lives on in the layout.
        subprocess.run(buildah("rmi", name), capture_output=True, check=False)
    _run(
        [
            regctl,
            "image",
            "mod",
            f"ocidir://{layout}:{arch}",
            "--config-platform",
            platform,
            "--replace",
        ],
        log,
    )


def build(args: BuildArgs | None = None, log: Path | None = None) -> BuiltImage:
    """Build both platforms, or reuse the cached build of the same inputs."""
    args = args or default_build_args()
    base = ensure_base_image(log)
    key = inputs_key(base, args)
    images = cache_root() / "image"
    target = images / key
    if (target / "index.json").is_file():
        say(f"reusing the cached build {target} (same inputs)")
        target.touch()
        return BuiltImage(target, key)
    images.mkdir(parents=True, exist_ok=True)
    partial = images / f".{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    regctl = find_regctl()
    for platform in PLATFORMS:
        _build_platform(platform, key, base, args, partial, regctl, log)
    say(f"writing the multi-platform index to {target}")
    _run(
        [
            regctl,
            "index",
            "create",
            f"ocidir://{partial}:{LAYOUT_TAG}",
            *(f"--ref=ocidir://{partial}:{_arch(p)}" for p in PLATFORMS),
        ],
        log,
    )
    partial.rename(target)
    _prune_cache(images, keep=target)
    return BuiltImage(target, key)


# -- pushing ------------------------------------------------------------------------------


def registry_host(reference: str) -> str:
    """REF's registry host; a REF without one (Docker Hub shorthand) is refused."""
    first, slash, _ = reference.partition("/")
    names_a_host = any(c in first for c in ".:[") or first == "localhost"
    if not slash or not names_a_host:
        raise SystemExit(f"image: {reference!r} names no registry host; write HOST[:PORT]/REPO:TAG")
    return first


def push(image: BuiltImage, reference: str, regctl: str, tls: str | None = None) -> None:
    """Copy the multi-platform index to ``reference`` with regctl.

    Plain HTTP for a loopback registry unless ``tls`` says otherwise; credentials come from
    regctl's own and Docker's config, never from argv.
    """
    host = registry_host(reference)
    mode = tls or ("disabled" if is_loopback(host) else "enabled")
    with tempfile.TemporaryDirectory(prefix="registry-cleanup-push-") as scratch:
        env = {**os.environ}
        config = Path(scratch) / "regctl.json"
        existing = os.environ.get("REGCTL_CONFIG")
        if existing and Path(existing).is_file():
            shutil.copyfile(existing, config)
        else:
            default = Path.home() / ".regctl" / "config.json"
            if default.is_file():
                shutil.copyfile(default, config)
        env["REGCTL_CONFIG"] = str(config)
        _run([regctl, "registry", "set", "--skip-check", "--tls", mode, host], None, env=env)
        say(f"pushing {image.reference} to {reference} (tls {mode})")
        _run([regctl, "image", "copy", image.reference, reference], None, env=env)


def find_regctl() -> str:
    """The project's regctl (scripts/setup.sh builds it into .tools/bin), else PATH's."""
    candidate = ROOT / ".tools" / "bin" / "regctl"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("regctl")
    if found is None:
        raise SystemExit("image: regctl is not installed; run ./dev setup")
    return found


def size_lines(image: BuiltImage) -> Iterator[str]:
    for size in image.sizes():
        verdict = "ok" if size.compressed_bytes < BUDGET_BYTES else "OVER BUDGET"
        yield (
            f"{size.platform:<12} {size.compressed_bytes:>12,} bytes compressed  "
            f"{size.digest}  ({verdict}, budget {BUDGET_BYTES:,})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./dev image",
        description="Build the image for linux/amd64 and linux/arm64 here, print each "
        "platform's compressed size, and optionally push the multi-platform index.",
    )
    parser.add_argument("--push", metavar="REF", help="push the index to REF (HOST/REPO:TAG)")
    parser.add_argument(
        "--tls",
        choices=("enabled", "disabled", "insecure"),
        help="TLS towards REF's registry (default: disabled on loopback, enabled elsewhere)",
    )
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("image: buildah builds here as root (chroot isolation); run as root")
    if options.push:
        registry_host(options.push)
    image = build()
    for line in size_lines(image):
        print(line)
    if options.push:
        push(image, options.push, find_regctl(), options.tls)
        print(f"pushed {options.push}")
    over = [s for s in image.sizes() if s.compressed_bytes >= BUDGET_BYTES]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
