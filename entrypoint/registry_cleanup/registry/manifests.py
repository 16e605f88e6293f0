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

import contextlib
import re
import threading
from dataclasses import dataclass
from types import TracebackType

import requests
import urllib3
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
            # Asked for (--tls insecure, and said once: hosts.tls_notice); not once per read.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self._session.verify = False
        elif settings.ca_file is not None:
            self._session.verify = str(settings.ca_file)
        retry = Retry(
            total=5,
            # A registry that does not answer at all is not waited for long: sizes only.
            connect=2,
            backoff_factor=0.5,
            status_forcelist=_RETRIED,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=connections, max_retries=retry)
        self._session.mount(f"{scheme}://", adapter)
        self._lock = threading.Lock()
        # Held by the first read while it learns the challenge (_ready).
        self._first = threading.Lock()
        self._unreachable: ManifestReadError | None = None
        self._challenge: _Challenge | None = None
        self._tokens: dict[str, str] = {}
        self._learning: dict[str, threading.Lock] = {}

    def __enter__(self) -> ManifestReader:
        # Learn the registry's challenge now, while the sweep lists tags: the first read then
        # need not wait a round trip for it.
        learning = threading.Thread(target=self._learn_quietly, name="challenge", daemon=True)
        learning.start()
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
        self._ready(repository, what)
        token = self._current_token(repository)
        answer = self._get(url, repository, what)
        if answer.status_code == 401:
            # A token expired (GitLab's last minutes): take a fresh one, ask once more.
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

    def _learn_challenge(self) -> None:
        """The registry's challenge, from one ``GET /v2/`` (the distribution API's version
        check), unless known. A registry that cannot be reached (after retries) is remembered:
        every read then fails at once instead of retrying on its own."""
        with self._first:
            if self._unreachable is not None:
                raise self._unreachable
            if self._challenge is None:
                try:
                    answer = self._get(self._base, "", f"{self.host}/v2/")
                except ManifestReadError as error:
                    self._unreachable = error
                    raise
                challenge = _Challenge("none")
                if answer.status_code == 401:
                    challenge = _challenge_of(answer.headers.get("WWW-Authenticate", ""))
                with self._lock:
                    self._challenge = challenge

    def _learn_quietly(self) -> None:
        with contextlib.suppress(ManifestReadError):  # the first read reports it
            self._learn_challenge()

    def _ready(self, repository: str, what: str) -> None:
        """Before a repository's first read: the challenge (the other reads wait for it, so that
        a burst of reads is not a burst of refusals) and, for a token service, its pull token."""
        self._learn_challenge()
        with self._lock:
            challenge, token = self._challenge, self._tokens.get(repository)
        if challenge is not None and challenge.scheme == "bearer" and token is None:
            self._take_token(challenge, repository, None, what)

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
        """Read a 401's challenge; for a token service, take a pull token for ``repository``."""
        challenge = _challenge_of(answer.headers.get("WWW-Authenticate", ""))
        with self._lock:
            self._challenge = challenge
        if challenge.scheme == "bearer":
            self._take_token(challenge, repository, used, what)

    def _take_token(
        self, challenge: _Challenge, repository: str, used: str | None, what: str
    ) -> None:
        """A pull token for ``repository`` (with the login's credentials, if any): once,
        however many reads of the repository wanted one at the same moment."""
        with self._lock:
            learning = self._learning.setdefault(repository, threading.Lock())
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
