"""The only module that runs regctl: argv lists, no shell, secrets through stdin only.

A ``RegctlSession`` owns a private ``REGCTL_CONFIG`` (0600, in a 0700 directory) for its
lifetime, so credentials never touch the user's own configuration and never outlive the run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from registry_cleanup.domain.image_age import RegistryImage, image_age, parse_created
from registry_cleanup.domain.refs import ImageRef
from registry_cleanup.errors import Failure, InputError, StoreError
from registry_cleanup.registry.failures import classify, error_line
from registry_cleanup.registry.hosts import HostSettings

REGCTL_BINARY_ENV = "REGISTRY_CLEANUP_REGCTL"
# Variables that would let regctl read credentials or settings other than ours.
_FOREIGN_CONFIG_VARIABLES = ("REGCTL_CONFIG", "DOCKER_AUTH_CONFIG", "DOCKER_CONFIG")
# Secrets regctl never needs: kept out of its environment (/proc/<pid>/environ) as well.
_SECRET_NAME_PARTS = ("PASSWORD", "TOKEN", "SECRET", "JWT")
# Long enough for regctl's own retries with backoff (429/5xx) to finish.
DEFAULT_TIMEOUT_SECONDS = 300.0
# GitLab masks a CI/CD variable only from 8 characters (ci/variables/#mask-a-cicd-variable):
# a shorter value occurs inside ordinary words, and masking it there mangles every message
# (a password "p" would turn "grp/app" into "gr[REDACTED]/a[REDACTED][REDACTED]").
MIN_MASKED_LENGTH = 8
SHORT_SECRET_NOTICE = (
    f"notice: the registry password is shorter than {MIN_MASKED_LENGTH} characters, so "
    "messages do not mask it (masking would mangle them; GitLab will not mask such a "
    "variable either)"
)


class RegctlError(StoreError):
    """regctl exited non-zero. ``detail`` is regctl's own stderr, secrets removed."""


def _child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Our environment minus other regctl/docker configs and anything that looks secret."""
    return {
        name: value
        for name, value in environ.items()
        if name not in _FOREIGN_CONFIG_VARIABLES
        and not any(part in name.upper() for part in _SECRET_NAME_PARTS)
    }


def find_regctl() -> str:
    """The regctl binary: $REGISTRY_CLEANUP_REGCTL, else regctl on PATH."""
    configured = os.environ.get(REGCTL_BINARY_ENV)
    found = configured or shutil.which("regctl")
    if not found:
        # Input, not a runtime failure: nothing was tried. Only `delete`, `restore` and
        # `--via registry` need regctl (and the sweep, to read images GitLab cannot date).
        raise InputError(
            "regctl is not installed: `delete`, `restore` and `--via registry` drive regctl "
            "v0.11.5; install it with `go install "
            "github.com/regclient/regclient/cmd/regctl@v0.11.5` (Go 1.25 or later), or run the "
            f"registry-cleanup image, which has it, or set {REGCTL_BINARY_ENV} to its path"
        )
    return found


class RegctlSession:
    """A private regctl configuration plus the calls we make with it.

    Use as a context manager; the configuration directory is removed on exit, whatever happens.
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        use_docker_config: bool = False,
        log: Callable[[str], None] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self._binary = binary or find_regctl()
        self._use_docker_config = use_docker_config
        self._log = log
        # Where a line for the user goes (a password too short to mask), once.
        self._notice = notice
        self._timeout = timeout
        self._hosts: dict[str, HostSettings] = {}
        self._secrets: list[str] = []
        self._directory: Path | None = None
        self._short_secret_told = False
        # Image configs never change: each one's creation time is read once (image()).
        self._created: dict[str, datetime | None] = {}

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> RegctlSession:
        self._directory = Path(tempfile.mkdtemp(prefix="registry-cleanup-"))  # mode 0700
        self._write_config()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    @property
    def config_path(self) -> Path:
        if self._directory is None:
            raise RuntimeError("RegctlSession used outside its 'with' block")
        return self._directory / "config.json"

    def _write_config(self) -> None:
        # Written before any login, so regctl never falls back to the user's docker config.
        config = {
            "incDockerCred": self._use_docker_config,
            "incDockerCert": self._use_docker_config,
            "hosts": {name: settings.as_config() for name, settings in self._hosts.items()},
        }
        descriptor = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump(config, stream)

    # -- configuration --------------------------------------------------------------------

    def configure_host(self, host: str, settings: HostSettings) -> None:
        """Set TLS handling for a registry host (before ``login``, which keeps it)."""
        self._hosts[host] = settings
        self._write_config()

    def login(self, host: str, username: str, password: str) -> None:
        """Store credentials for ``host`` in the private config (checked by the first call)."""
        if not password:
            raise InputError(f"the registry password for {host} is empty")
        # Also the form HTTP basic auth sends, should any output ever quote a header.
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.keep_secret(password)
        self.keep_secret(basic)
        # --skip-check: no ping of the registry here. The first real call (resolving the tag)
        # checks the credentials anyway and fails with the same "unauthorized"; the ping only
        # cost every run two more round trips to the registry.
        self._run(
            ["registry", "login", host, "--user", username, "--pass-stdin", "--skip-check"],
            stdin=password,
            action=f"log in to {host} as {username}",
        )

    # -- registry calls -------------------------------------------------------------------

    def digest(self, ref: ImageRef | str) -> str | None:
        """The digest a tag points at, or None when the tag does not exist."""
        try:
            result = self._run(["image", "digest", str(ref)], action=f"resolve {ref}")
        except RegctlError as error:
            if error.failure is Failure.not_found:
                return None
            raise
        return result.strip()

    def manifest_exists(self, pinned: str) -> bool:
        """True while the registry still holds the manifest ``pinned`` (``repo@digest``) names:
        a deleted tag's image stays until the registry's garbage collection removes it."""
        return self.digest(pinned) is not None

    def is_listed(self, ref: ImageRef) -> bool:
        """True when the repository's tag list names the tag, whether or not it resolves.

        Only asked after a 404 (see deletion._remove), because it reads the whole list.
        """
        listing = self._run(
            ["tag", "ls", ref.repository_ref], action=f"list the tags of {ref.repository_ref}"
        )
        return ref.tag in listing.split()

    def tag_rm(self, ref: ImageRef) -> None:
        """Delete one tag. Raises RegctlError(failure=not_found) when it does not exist."""
        self._run(["tag", "rm", str(ref)], action=f"delete tag {ref}")

    def is_placeholder(self, ref: ImageRef) -> bool:
        """True when the tag points at the dummy manifest ``tag rm``'s fallback pushes.

        regctl labels that image's config ``delete-tag=<tag>``; no real build sets it.
        """
        try:
            label = self._run(
                [
                    "image",
                    "config",
                    str(ref),
                    "--format",
                    '{{ index .Config.Labels "delete-tag" }}',
                ],
                action=f"inspect {ref}",
            )
        except RegctlError:
            return False
        return label.strip() == ref.tag

    def manifest(self, ref: ImageRef | str) -> bytes | None:
        """The manifest a reference names, exactly as the registry serves it (an index stays
        an index), or None when it does not exist."""
        try:
            return self._run_raw(
                ["manifest", "get", str(ref), "--format", "raw-body"], action=f"read {ref}"
            )
        except RegctlError as error:
            if error.failure is Failure.not_found:
                return None
            raise

    def created(self, pinned: str) -> str | None:
        """The ``created`` of the config of the image ``pinned`` (``repo@digest``) names."""
        answer = self._run(
            ["image", "config", pinned, "--format", "{{ json .Created }}"],
            action=f"read the config of {pinned}",
        )
        value = json.loads(answer or "null")
        return value if isinstance(value, str) else None

    def image(self, ref: ImageRef) -> RegistryImage | None:
        """The tag's digest and its newest platform image's creation time (domain/image_age.py), or
        None when the registry does not have the tag. Configs are read once per digest."""
        body = self.manifest(ref)
        if body is None:
            return None

        def created_of(digest: str) -> datetime | None:
            pinned = ref.at_digest(digest)
            if pinned not in self._created:
                self._created[pinned] = parse_created(self.created(pinned))
            return self._created[pinned]

        return image_age(body, created_of)

    def copy(self, source: str, target: ImageRef) -> None:
        """Point ``target`` at ``source`` (used to restore a tag to its original digest)."""
        self._run(["image", "copy", source, str(target)], action=f"restore {target}")

    # -- the one place a process starts ---------------------------------------------------

    def _run(self, args: Sequence[str], *, action: str, stdin: str | None = None) -> str:
        return self._run_raw(args, action=action, stdin=stdin).decode()

    def _run_raw(self, args: Sequence[str], *, action: str, stdin: str | None = None) -> bytes:
        """regctl's standard output as bytes: a manifest's digest is of its exact bytes."""
        argv = [self._binary, *args]
        env = _child_environment(os.environ)
        env["REGCTL_CONFIG"] = str(self.config_path)
        try:
            completed = subprocess.run(
                argv,
                input=stdin.encode() if stdin is not None else None,
                capture_output=True,
                env=env,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RegctlError(
                f"could not {action}: regctl did not finish within {self._timeout:.0f}s",
                failure=Failure.timeout,
                detail="",
            ) from None
        stderr = self.redact(completed.stderr.decode(errors="replace").strip())
        if self._log is not None and stderr:
            self._log(f"regctl {' '.join(args)}: {stderr}")
        if completed.returncode != 0:
            failure = classify(stderr)
            line = error_line(stderr) or f"exit {completed.returncode}"
            raise RegctlError(f"could not {action}: {line}", failure=failure, detail=stderr)
        return completed.stdout

    def keep_secret(self, secret: str) -> None:
        """Mask ``secret`` wherever it occurs in what regctl says; one too short to mask
        without mangling the messages is not masked, and the user is told so once."""
        if len(secret) >= MIN_MASKED_LENGTH:
            self._secrets.append(secret)
            return
        if self._notice is not None and not self._short_secret_told:
            self._notice(SHORT_SECRET_NOTICE)
        self._short_secret_told = True

    def redact(self, text: str) -> str:
        """Remove every secret this session was given from ``text``."""
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text
