"""A real distribution registry on a free loopback port, in one of two flavours.

- ``2.8``: Debian's docker-registry (distribution 2.8). ``DELETE /v2/<name>/manifests/<tag>``
  answers 400 DIGEST_INVALID, so regctl's ``tag rm`` pushes a placeholder manifest to the tag and
  deletes that by digest.
- ``v3``: distribution v3.1.2 (``./dev setup`` builds it into .tools/bin/registry-v3). DELETE by
  tag answers 202 and removes only that tag, as GitLab's registry does; regctl's ``tag rm`` is
  that one request.

Both read the same configuration file (``serve config.yml``). Used by the tests, the demo and the
benchmarks. Each instance has its own temporary storage, an htpasswd user, and deletes enabled or
disabled.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bcrypt

from devkit.service import Service

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


FlavourName = Literal["2.8", "v3"]


@dataclass(frozen=True)
class Flavour:
    """One distribution release: where its binary is and what its tag delete does."""

    name: FlavourName
    binary: str  # the command name, in .tools/bin or on PATH
    # What `<binary> --version` prints for this release, e.g. "... v3.1.2+unknown".
    version_marker: re.Pattern[str]
    # True when DELETE by tag answers 202 and removes only that tag (GitLab's registry does).
    deletes_by_tag: bool
    install_hint: str


FLAVOURS: dict[FlavourName, Flavour] = {
    "2.8": Flavour(
        name="2.8",
        binary="docker-registry",
        version_marker=re.compile(r" v?2\.8\."),
        deletes_by_tag=False,
        install_hint="docker-registry is not installed (Debian package docker-registry)",
    ),
    "v3": Flavour(
        name="v3",
        binary="registry-v3",
        version_marker=re.compile(r" v3\.1\.2(\+\S*)?$"),
        deletes_by_tag=True,
        install_hint=(
            "distribution v3.1.2 is not installed (./dev setup builds .tools/bin/registry-v3)"
        ),
    ),
}


@functools.cache
def find_registry_binary(flavour: FlavourName = "2.8") -> str | None:
    """The flavour's binary, checked by its version: a `registry` of another release is no match.

    The project's own .tools/bin first (./dev setup), then PATH.
    """
    wanted = FLAVOURS[flavour]
    candidates = [ROOT / ".tools" / "bin" / wanted.binary, shutil.which(wanted.binary)]
    for candidate in candidates:
        if candidate is None or not os.access(candidate, os.X_OK):
            continue
        try:
            printed = subprocess.run(
                [str(candidate), "--version"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if wanted.version_marker.search(printed):
            return str(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate and key for the registry, and the CA file that verifies them."""

    certificate: Path
    key: Path
    ca: Path


@dataclass
class LocalRegistry(Service):
    """A running registry. ``host`` is ``127.0.0.1:PORT``; plain HTTP unless ``tls`` is given."""

    root: Path
    deletes_enabled: bool = True
    flavour: FlavourName = "2.8"
    username: str = "tester"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    port: int = field(default_factory=free_port)
    # Replaces the htpasswd section, e.g. {"token": {...}} for GitLab-style token auth.
    auth: dict[str, object] | None = None
    tls: TlsFiles | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def deletes_by_tag(self) -> bool:
        """True when DELETE by tag removes only that tag (202), as GitLab's registry does."""
        return FLAVOURS[self.flavour].deletes_by_tag

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    # -- lifetime -------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> LocalRegistry:
        binary = find_registry_binary(self.flavour)
        if binary is None:
            raise RuntimeError(FLAVOURS[self.flavour].install_hint)
        self.root.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "htpasswd"
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        htpasswd.write_text(f"{self.username}:{hashed}\n")
        config = self.root / "config.yml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "error", "accesslog": {"disabled": True}},
                    "storage": {
                        "filesystem": {"rootdirectory": str(self.root / "data")},
                        "delete": {"enabled": self.deletes_enabled},
                        "cache": {"blobdescriptor": "inmemory"},
                    },
                    "http": self._http_config(),
                    "auth": self.auth
                    or {"htpasswd": {"realm": "registry-cleanup-tests", "path": str(htpasswd)}},
                }
            )
        )
        log = (self.root / "registry.log").open("ab")
        self._process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=log, start_new_session=True
        )
        self._wait_ready(timeout)
        return self

    def _http_config(self) -> dict[str, object]:
        config: dict[str, object] = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self.tls is not None:
            config["tls"] = {"certificate": str(self.tls.certificate), "key": str(self.tls.key)}
        return config

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                log = (self.root / "registry.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"registry {self.flavour} exited at start: {log}")
            try:
                self.request("GET", "/v2/")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError(
            f"registry {self.flavour} did not answer on {self.host} within {timeout}s"
        )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    # -- direct HTTP, independent of regctl, for checking what really is there ------------

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        all_headers = {"Authorization": f"Basic {basic}", **(headers or {})}
        url = f"{self.scheme}://{self.host}{path}"
        context = ssl.create_default_context(cafile=str(self.tls.ca)) if self.tls else None
        status, answer_headers, body = _http(url, method, all_headers, context)
        challenge = answer_headers.get("Www-Authenticate") or answer_headers.get(
            "WWW-Authenticate", ""
        )
        if status == 401 and challenge.startswith("Bearer "):
            # Token auth: get a bearer token from the realm with our user, as a client does.
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            realm = params.pop("realm")
            token_status, _, token_body = _http(
                f"{realm}?{urllib.parse.urlencode(params)}",
                "GET",
                {"Authorization": f"Basic {basic}"},
            )
            if token_status != 200:
                return status, answer_headers, body
            bearer = json.loads(token_body)["token"]
            all_headers["Authorization"] = f"Bearer {bearer}"
            status, answer_headers, body = _http(url, method, all_headers, context)
        return status, answer_headers, body

    def tags(self, repository: str) -> list[str]:
        """Every tag, following the registry's pages: distribution v3 answers at most 1,000
        names a request whatever ``n`` asks for, with a ``Link: <…>; rel="next"`` to the rest
        (2.8 answers all at once)."""
        found: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=100000"
        while path is not None:
            status, headers, body = self.request("GET", path)
            if status == 404:
                return []
            if status != 200:
                raise RuntimeError(f"tag list of {repository}: HTTP {status} {body[:200]!r}")
            found += json.loads(body).get("tags") or []
            path = _next_page(headers)
        return sorted(found)

    def digest(self, repository: str, reference: str) -> str | None:
        status, headers, _ = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT}
        )
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"HEAD {repository}:{reference}: HTTP {status}")
        return headers.get("Docker-Content-Digest") or headers.get("docker-content-digest")

    def manifest_exists(self, repository: str, digest: str) -> bool:
        return self.digest(repository, digest) is not None

    def tags_directory(self, repository: str) -> Path:
        """Where the registry keeps ``repository``'s tags on disk.

        distribution's filesystem layout: <root>/docker/registry/v2/repositories/<name>/
        _manifests/tags/<tag>/current/link names the tag's manifest.
        """
        v2 = self.root / "data" / "docker" / "registry" / "v2"
        return v2 / "repositories" / repository / "_manifests" / "tags"


_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def _next_page(headers: dict[str, str]) -> str | None:
    """The path of the next page from a ``Link`` header (RFC 8288), if there is one."""
    link = next((value for key, value in headers.items() if key.lower() == "link"), "")
    found = _NEXT_LINK.search(link)
    if found is None:
        return None
    target = urllib.parse.urlsplit(found.group(1))
    return f"{target.path}?{target.query}" if target.query else target.path


def _http(
    url: str, method: str, headers: dict[str, str], context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    # Only http(s):// URLs reach here: the registry's own address or its token realm.
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def registry_environment() -> dict[str, str]:
    """The environment for child processes, without the caller's registry credentials."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "REGISTRY_CLEANUP_"))}
