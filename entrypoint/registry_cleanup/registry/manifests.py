"""Reading many manifests from the registry's HTTP API at once, for the storage figures.

regctl reads one reference per process: a process start, a fresh login and two round trips for
every manifest. That suits the few tags GitLab cannot date; the figures read every tag's image
(issue 22's budget: a sweep with --sizes at most 1.5 times the sweep without), so this reader
keeps one connection pool for the run, learns the registry's challenge once, takes one pull
token per repository where the registry sends to a token service (GitLab's /jwt/auth), and
then costs one round trip per manifest. It reads only (GET), with the registry login's
credentials and TLS settings, and retries 429 and 5xx answers with backoff as regctl does.

Secrets: the password goes in the Authorization header only, never in a URL, and no message
here quotes a header.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from types import TracebackType

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from urllib3.util.retry import Retry

from registry_cleanup.errors import Failure, StoreError
from registry_cleanup.registry.hosts import HostSettings, TlsMode

# Every manifest kind a registry may serve; an index stays an index (never resolved here).
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# The answers regctl retries too (429, 408 and the gateway 5xx), with backoff, Retry-After
# honoured: a rate-limited registry slows the reads down instead of failing them.
_RETRIED = (408, 429, 500, 502, 503, 504)
_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


class ManifestReadError(StoreError):
    """A manifest could not be read (refused, unreachable, an unexpected answer)."""


@dataclass(frozen=True)
class _Challenge:
    """How the registry wants to be asked: nothing, basic auth, or a bearer token from
    ``realm`` for ``service``."""

    scheme: str  # "none", "basic" or "bearer"
    realm: str = ""
    service: str = ""


def _challenge_of(header: str) -> _Challenge:
    scheme = header.split(" ", 1)[0].lower()
    parameters = dict(_PARAMETER.findall(header))
    if scheme == "bearer":
        return _Challenge("bearer", parameters.get("realm", ""), parameters.get("service", ""))
    return _Challenge("basic")


class ManifestReader:
    """Manifests of one registry host, read concurrently over one connection pool.

    Use as a context manager, or call ``close``."""

    def __init__(
        self,
        host: str,
        settings: HostSettings,
        *,
        username: str | None = None,
        password: str | None = None,
        connections: int = 32,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        scheme = "http" if settings.tls is TlsMode.disabled else "https"
        self._base = f"{scheme}://{host}/v2/"
        self._credentials = (username, password) if username and password else None
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["Accept"] = ACCEPT
        if settings.tls is TlsMode.insecure:
            self._session.verify = False
        elif settings.ca_file is not None:
            self._session.verify = str(settings.ca_file)
        retry = Retry(
            total=5,
            backoff_factor=0.5,
            status_forcelist=_RETRIED,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=connections, max_retries=retry)
        self._session.mount(f"{scheme}://", adapter)
        self._lock = threading.Lock()
        self._challenge: _Challenge | None = None
        self._tokens: dict[str, str] = {}
        self._learning: dict[str, threading.Lock] = {}

    def __enter__(self) -> ManifestReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def manifest(self, repository: str, reference: str) -> bytes | None:
        """The manifest ``reference`` (a tag or a digest) names in ``repository`` (the path
        under the host), exactly as served; None when the registry does not have it."""
        what = f"{self.host}/{repository}{'@' if ':' in reference else ':'}{reference}"
        return self._read(f"{self._base}{repository}/manifests/{reference}", repository, what)

    def blob(self, repository: str, digest: str) -> bytes | None:
        """A blob (an image's config) by digest; None when the registry does not have it.
        A registry that keeps blobs elsewhere redirects; the credentials stay behind."""
        what = f"blob {digest} of {self.host}/{repository}"
        return self._read(f"{self._base}{repository}/blobs/{digest}", repository, what)

    # -------------------------------------------------------------------------------------

    def _read(self, url: str, repository: str, what: str) -> bytes | None:
        token = self._current_token(repository)
        answer = self._get(url, repository, what)
        if answer.status_code == 401:
            # The challenge not learnt yet, or an expired token: learn it, ask once more.
            self._learn(answer, repository, token, what)
            answer = self._get(url, repository, what)
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise ManifestReadError(
                f"could not read {what}: the registry answered {answer.status_code}",
                failure=_failure_of(answer.status_code),
            )
        return answer.content

    def _current_token(self, repository: str) -> str | None:
        with self._lock:
            return self._tokens.get(repository)

    def _get(self, url: str, repository: str, what: str) -> requests.Response:
        with self._lock:
            challenge, token = self._challenge, self._tokens.get(repository)
        headers: dict[str, str] = {}
        auth = None
        if challenge is not None and challenge.scheme == "bearer" and token:
            headers["Authorization"] = f"Bearer {token}"
        elif challenge is not None and challenge.scheme == "basic" and self._credentials:
            auth = HTTPBasicAuth(*self._credentials)
        try:
            return self._session.get(url, headers=headers, auth=auth, timeout=self._timeout)
        except requests.exceptions.SSLError:
            raise ManifestReadError(
                f"could not read {what}: TLS failed (--tls, REGISTRY_CLEANUP_CA_FILE)",
                failure=Failure.tls,
            ) from None
        except requests.RequestException as error:
            raise ManifestReadError(
                f"could not read {what}: {type(error).__name__}", failure=Failure.unreachable
            ) from None

    def _learn(
        self, answer: requests.Response, repository: str, used: str | None, what: str
    ) -> None:
        """Read the 401's challenge; for a token service, take a pull token for
        ``repository`` (with the login's credentials, if any): once, however many reads of
        the repository were refused at the same moment."""
        challenge = _challenge_of(answer.headers.get("WWW-Authenticate", ""))
        with self._lock:
            self._challenge = challenge
            learning = self._learning.setdefault(repository, threading.Lock())
        if challenge.scheme != "bearer":
            return
        with learning:
            if self._current_token(repository) != used:
                return  # another read took a fresh token meanwhile
            token = self._token(challenge, repository, what)
            with self._lock:
                self._tokens[repository] = token

    def _token(self, challenge: _Challenge, repository: str, what: str) -> str:
        try:
            answer = self._session.get(
                challenge.realm,
                params={"service": challenge.service, "scope": f"repository:{repository}:pull"},
                auth=HTTPBasicAuth(*self._credentials) if self._credentials else None,
                timeout=self._timeout,
            )
            body = answer.json() if answer.status_code == 200 else {}
        except (requests.RequestException, ValueError) as error:
            raise ManifestReadError(
                f"could not read {what}: the token service failed ({type(error).__name__})",
                failure=Failure.unreachable,
            ) from None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ManifestReadError(
                f"could not read {what}: the token service answered {answer.status_code}",
                failure=Failure.unauthorized,
            )
        return token


def _failure_of(status: int) -> Failure:
    if status == 401:
        return Failure.unauthorized
    if status == 403:
        return Failure.denied
    if status in _RETRIED:
        return Failure.unreachable
    return Failure.other
