"""A recording stand-in for the ``docker`` client, for machines without a container engine.

The build job of templates/branch-image.yml runs ``docker login``, ``docker build``, ``docker
push`` and ``docker inspect``. No Docker engine runs on the test machines, so the tests put this
program on PATH as ``docker``: it records every call (never a password), "builds" a small real
OCI image whose content follows from the Dockerfile and build arguments, and pushes it to the
real test registry with regctl. Everything after the build (digest record, dotenv, delete job)
then runs against real images. Like Docker, it talks plain HTTP to loopback registries only.

State lives in the directory named by DOCKER_SHIM_STATE: ``calls.jsonl`` (one JSON object per
call), ``auth.json`` (0600, what ``login`` stored) and ``images.json`` (local and pushed images).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from devkit.images import image_blobs, write_layout

PLAIN_HTTP_HOSTS = ("127.0.0.1", "localhost")
# The only --format the template uses; anything else must fail loudly, not pass by accident.
REPO_DIGESTS_FORMAT = "{{range .RepoDigests}}{{println .}}{{end}}"


class ShimError(Exception):
    pass


def _state_dir() -> Path:
    value = os.environ.get("DOCKER_SHIM_STATE")
    if not value:
        raise ShimError("DOCKER_SHIM_STATE is unset")
    return Path(value)


def _load(name: str) -> dict[str, object]:
    path = _state_dir() / name
    return json.loads(path.read_text()) if path.exists() else {}


def _save(name: str, data: dict[str, object]) -> None:
    path = _state_dir() / name
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    path.chmod(0o600)


def _record(call: dict[str, object]) -> None:
    with (_state_dir() / "calls.jsonl").open("a") as log:
        log.write(json.dumps(call, sort_keys=True) + "\n")


def _host(ref: str) -> str:
    return ref.split("/", 1)[0]


def _repository(ref: str) -> str:
    """registry/path/name:tag -> registry/path/name (the tag never holds a '/')."""
    head, _, tail = ref.rpartition(":")
    return head if head and "/" not in tail else ref


def login(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="docker login")
    parser.add_argument("--username", "-u", required=True)
    parser.add_argument("--password-stdin", action="store_true", required=True)
    parser.add_argument("server")
    options = parser.parse_args(args)
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise ShimError("login: empty password on stdin")
    auth = _load("auth.json")
    auth[options.server] = {"user": options.username, "pass": password}
    _save("auth.json", auth)
    _record({"command": "login", "server": options.server, "username": options.username})
    print("Login Succeeded")


def build(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="docker build")
    parser.add_argument("--file", "-f", default="Dockerfile")
    parser.add_argument("--tag", "-t", action="append", required=True)
    parser.add_argument("--build-arg", action="append", default=[])
    parser.add_argument("context")
    options = parser.parse_args(args)
    context = Path(options.context)
    dockerfile = Path(options.file)
    if not context.is_dir():
        raise ShimError(f"build: context {context} is not a directory")
    if not dockerfile.is_file():
        raise ShimError(f"build: Dockerfile {dockerfile} not found")
    content = dockerfile.read_bytes() + json.dumps(options.build_arg).encode()
    seed = hashlib.sha256(content).hexdigest()
    images = _load("images.json")
    for tag in options.tag:
        images[tag] = {"seed": seed, "repo_digests": []}
    _save("images.json", images)
    _record(
        {
            "command": "build",
            "file": str(dockerfile),
            "context": str(context),
            "tags": options.tag,
            "build_args": options.build_arg,
            "cwd": os.getcwd(),
        }
    )


def push(args: list[str]) -> None:
    if len(args) != 1:
        raise ShimError("push: expected exactly one image reference")
    ref = args[0]
    images = _load("images.json")
    image = images.get(ref)
    if not isinstance(image, dict):
        raise ShimError(f"push: an image does not exist locally with the tag: {ref}")
    host = _host(ref)
    credentials = _load("auth.json").get(host)
    if not isinstance(credentials, dict):
        raise ShimError(f"push: no basic auth credentials for {host} (docker login first)")
    tag = ref.rpartition(":")[2]
    manifest, blobs = image_blobs(str(image["seed"]))
    with tempfile.TemporaryDirectory(prefix="docker-shim-") as work:
        layout = Path(work) / "layout"
        write_layout(layout, manifest, blobs, tag)
        config = Path(work) / "regctl.json"
        tls = "disabled" if host.split(":")[0] in PLAIN_HTTP_HOSTS else "enabled"
        config.write_text(
            json.dumps(
                {
                    "incDockerCred": False,
                    "incDockerCert": False,
                    "hosts": {host: {"tls": tls, **credentials}},
                }
            )
        )
        config.chmod(0o600)
        env = {**os.environ, "REGCTL_CONFIG": str(config)}
        completed = subprocess.run(
            ["regctl", "image", "copy", f"ocidir://{layout}:{tag}", ref],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if completed.returncode != 0:
        raise ShimError(f"push: regctl failed: {completed.stderr.strip()}")
    image["repo_digests"] = [f"{_repository(ref)}@{manifest.digest}"]
    _save("images.json", images)
    _record({"command": "push", "ref": ref, "digest": manifest.digest})
    print(f"{tag}: digest: {manifest.digest} size: {len(manifest.data)}")


def inspect(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="docker inspect")
    parser.add_argument("--format", "-f", required=True)
    parser.add_argument("ref")
    options = parser.parse_args(args)
    if options.format != REPO_DIGESTS_FORMAT:
        raise ShimError(f"inspect: this shim only knows --format {REPO_DIGESTS_FORMAT!r}")
    image = _load("images.json").get(options.ref)
    if not isinstance(image, dict):
        raise ShimError(f"inspect: no such object: {options.ref}")
    _record({"command": "inspect", "ref": options.ref})
    for digest in image["repo_digests"]:
        print(digest)


COMMANDS = {"login": login, "build": build, "push": push, "inspect": inspect}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"docker (test shim): unsupported command {argv[:1]}", file=sys.stderr)
        return 1
    try:
        COMMANDS[argv[0]](argv[1:])
    except ShimError as error:
        print(f"docker (test shim): {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
