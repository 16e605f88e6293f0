"""The shell's connections: GitLab from --api-url and --project (or --group), the registry
from the CI job's variables, and a regctl session from the registry options.

Commands call these and hand what they open to the engine; nothing below cli/ opens a
connection of its own. python-gitlab and regctl's module are imported inside, so ``delete``
and ``--help`` stay light.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry_cleanup.errors import InputError
from registry_cleanup.output.shown import stderr_line

if TYPE_CHECKING:
    from registry_cleanup.domain.image_age import ImageReader, RegistryImage
    from registry_cleanup.domain.refs import ImageRef
    from registry_cleanup.engine.deletion import TagStore
    from registry_cleanup.engine.sizes import ManifestSource
    from registry_cleanup.gitlab import GitLabApi, GitLabGroupApi, Repository
    from registry_cleanup.registry.hosts import TlsMode
    from registry_cleanup.registry.manifests import ManifestReader
    from registry_cleanup.registry.regctl import RegctlSession


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def project_api(url: str | None, project: str | None) -> GitLabApi:
    """One project's API. No request yet: this checks the URL, the project and the token."""
    from registry_cleanup.gitlab import API_URL_ENV, PROJECT_ENV, Credentials, GitLabApi

    if not url:
        raise InputError(f"no GitLab API URL: pass --api-url or set {API_URL_ENV}")
    if not project:
        raise InputError(f"no project: pass --project or set {PROJECT_ENV}")
    return GitLabApi(url, project, Credentials.from_env(os.environ))


def group_api(url: str | None, group: str) -> GitLabGroupApi:
    from registry_cleanup.gitlab import API_URL_ENV, Credentials, GitLabGroupApi, TokenKind

    if not url:
        raise InputError(f"no GitLab API URL: pass --api-url or set {API_URL_ENV}")
    credentials = Credentials.from_env(os.environ)
    if credentials.kind is TokenKind.job:
        # lib/api/group_container_repositories.rb takes no job token (no job_token_allowed).
        raise InputError(
            "a CI job token cannot list a group's projects; set GITLAB_TOKEN (or name a "
            "variable in REGISTRY_CLEANUP_TOKEN_VARIABLE) to a group access token with "
            "the Maintainer role and the api scope"
        )
    return GitLabGroupApi(url, group, credentials)


def find_repository(api: GitLabApi, name: str | None) -> Repository:
    """The project's repository by path, location or id; the only one when name is None."""
    from registry_cleanup.gitlab.registry import named, paths_of

    repositories = api.repositories()
    if name is None:
        if len(repositories) == 1:
            return repositories[0]
        raise InputError(
            f"the project has {len(repositories)} repositories ({paths_of(repositories)}); "
            "pass --repository"
        )
    for repository in named(repositories, name):
        return repository
    raise InputError(
        f"no container repository {name!r} in project {api.project_ref} "
        f"(it has: {paths_of(repositories)})"
    )


@dataclass(frozen=True)
class RegistryOptions:
    """The registry options ``delete`` and ``restore`` share: where to log in, as whom, TLS."""

    login_host: str | None
    username: str | None
    password: str | None
    tls: TlsMode
    ca_file: Path | None
    use_docker_config: bool
    timeout: float
    verbose: bool

    @contextmanager
    def session(self, host: str) -> Iterator[RegctlSession]:
        """A regctl session for ``host``: its TLS, then the login when one is given."""
        from registry_cleanup.registry.hosts import HostSettings, tls_notice
        from registry_cleanup.registry.regctl import RegctlSession

        notice = tls_notice(host, self.tls)
        if notice is not None:
            stderr_line(notice)
        log = stderr_line if self.verbose else None
        with RegctlSession(
            use_docker_config=self.use_docker_config,
            log=log,
            timeout=self.timeout,
            notice=stderr_line,
        ) as session:
            session.configure_host(host, HostSettings(tls=self.tls, ca_file=self.ca_file))
            if self.username and self.password and self.login_host:
                session.login(self.login_host, self.username, self.password)
            yield session


@dataclass(frozen=True)
class RegistryLogin:
    """The job's registry login (CI_REGISTRY, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD): one
    regctl config and login per run for deleting and dating, one HTTP reader for the sizes."""

    host: str | None
    username: str | None
    tls: TlsMode
    ca_file: Path | None

    @classmethod
    def from_env(cls, tls: TlsMode) -> RegistryLogin:
        ca_file = os.environ.get("REGISTRY_CLEANUP_CA_FILE")
        return cls(
            host=os.environ.get("CI_REGISTRY"),
            username=os.environ.get("CI_REGISTRY_USER"),
            tls=tls,
            ca_file=Path(ca_file) if ca_file else None,
        )

    @property
    def complete(self) -> bool:
        """Whether the environment has everything a login needs."""
        return bool(self.host and self.username and os.environ.get("CI_REGISTRY_PASSWORD"))

    @contextmanager
    def session(self) -> Iterator[RegctlSession]:
        from registry_cleanup.registry.hosts import HostSettings
        from registry_cleanup.registry.regctl import RegctlSession

        host, username, password = self._credentials("--via registry")
        with RegctlSession(notice=stderr_line) as session:
            session.configure_host(host, HostSettings(tls=self.tls, ca_file=self.ca_file))
            session.login(host, username, password)
            yield session

    @contextmanager
    def manifests(self) -> Iterator[ManifestReader]:
        """A reader of the registry's manifests (sweep --sizes): the same credentials and TLS
        settings as the regctl login, over HTTP, many at once."""
        from registry_cleanup.registry.hosts import HostSettings
        from registry_cleanup.registry.manifests import ManifestReader

        host, username, password = self._credentials("--sizes (it reads the registry)")
        settings = HostSettings(tls=self.tls, ca_file=self.ca_file)
        with ManifestReader(host, settings, username=username, password=password) as reader:
            yield reader

    def _credentials(self, purpose: str) -> tuple[str, str, str]:
        """Host, user and password, or one line saying what ``purpose`` needs."""
        password = os.environ.get("CI_REGISTRY_PASSWORD")
        if not (self.host and self.username and password):
            raise InputError(
                f"{purpose} needs CI_REGISTRY, CI_REGISTRY_USER and CI_REGISTRY_PASSWORD"
            )
        return self.host, self.username, password


@dataclass(frozen=True)
class RegistryAccess:
    """A run's ways into the registry: where deletes go (--via registry: one regctl session,
    logged in once, for every repository; None: GitLab's tag endpoint), and the reader of what
    GitLab cannot say of a tag (its age and digest, for an image index), or None without
    registry credentials."""

    session: TagStore | None
    images: ImageReader | None
    # The registry's manifests, read for the storage figures (sweep --sizes), or None.
    manifests: ManifestSource | None = None

    def store_for(self, api: GitLabApi) -> Callable[[Repository], TagStore]:
        """Where the engine deletes a repository's tags: the regctl session, or GitLab's tag
        endpoints for ``api``'s project (which delete a page at a time where they can)."""
        session = self.session
        if session is not None:
            return lambda _: session
        from registry_cleanup.gitlab.tag_store import ApiTagStore

        images = self.images
        return lambda repository: ApiTagStore(api, repository, images=images)


@contextmanager
def registry_access(
    deletes: RegistryLogin | None, reads: RegistryLogin | None = None, *, sizes: bool = False
) -> Iterator[RegistryAccess]:
    """One regctl login at most: the delete session reads too; otherwise one is opened at the
    first read (most sweeps never need one) and closed with the run. With ``sizes``, a
    manifest reader for the storage figures as well (``reads`` must be complete)."""
    with ExitStack() as stack:
        login = reads if reads is not None else deletes
        if sizes and login is None:
            raise InputError("--sizes reads the registry: it needs registry credentials")
        manifests = stack.enter_context(login.manifests()) if sizes and login else None
        if deletes is not None:
            session = stack.enter_context(deletes.session())
            yield RegistryAccess(session, session, manifests)
        elif reads is None or not reads.complete:
            yield RegistryAccess(None, None, manifests)
        else:
            yield RegistryAccess(None, _OnFirstRead(reads, stack), manifests)


class _OnFirstRead:
    """An ImageReader that logs in to the registry when first asked (thread-safe)."""

    def __init__(self, login: RegistryLogin, stack: ExitStack) -> None:
        self._login = login
        self._stack = stack
        self._lock = threading.Lock()
        self._session: RegctlSession | None = None

    def image(self, ref: ImageRef) -> RegistryImage | None:
        return self._logged_in().image(ref)

    def digest(self, ref: ImageRef) -> str | None:
        return self._logged_in().digest(ref)

    def _logged_in(self) -> RegctlSession:
        with self._lock:
            if self._session is None:
                self._session = self._stack.enter_context(self._login.session())
            return self._session
