"""Registry bearer tokens the way GitLab issues them at /jwt/auth, for distribution's token auth.

The registry is configured with ``auth: token:`` (realm = the emulator's /jwt/auth, service,
issuer, rootcertbundle); the emulator signs RS256 JWTs whose ``x5c`` header carries the
self-signed certificate that is also the registry's root bundle. distribution 2.8 verifies
tokens that way (registry/auth/token: issuer, audience = service, exp/nbf with 60 s leeway, the
x5c chain against rootcertbundle, then the signature) and grants only the actions listed in the
``access`` claim; a missing action gets the registry's insufficient_scope error.
"""

from __future__ import annotations

import base64
import secrets
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.emulator_core import (
    PERSONAL_OR_JOB,
    Answer,
    Caller,
    Request,
    Role,
    Route,
    Token,
    no_route,
    route,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

# GitLab's defaults (config/gitlab.yml: registry.issuer, and the registry's auth.token.service).
SERVICE = "container_registry"
ISSUER = "gitlab-issuer"
TOKEN_LIFETIME_SECONDS = 300


class TokenIssuer:
    def __init__(self) -> None:
        # Who was given a token, in order (the HTTP Basic user name): tests count their own.
        self.issued_to: list[str] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitlab-emulator-registry")])
        now = datetime.now(UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    def auth_config(self, realm: str, directory: Path) -> dict[str, object]:
        """The registry's ``auth`` section; writes the root certificate bundle."""
        directory.mkdir(parents=True, exist_ok=True)
        bundle = directory / "token-root.crt"
        bundle.write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))
        return {
            "token": {
                "realm": realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(bundle),
            }
        }

    def issue(self, subject: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        der = self._certificate.public_bytes(serialization.Encoding.DER)
        return jwt.encode(
            {
                "iss": ISSUER,
                "sub": subject,
                "aud": SERVICE,
                "iat": now,
                "nbf": now - 5,
                "exp": now + TOKEN_LIFETIME_SECONDS,
                "jti": secrets.token_hex(16),
                "access": access,
            },
            self._key,
            algorithm="RS256",
            headers={"typ": "JWT", "x5c": [base64.b64encode(der).decode()]},
        )


# Auth::ContainerRegistryAuthenticationService: pull needs read_container_image (Reporter),
# push create_container_image (Developer), delete destroy_container_image (Developer); a job
# token gets build_* abilities on its own project only (Ci::JobToken::Policies).
_ACTION_ROLES = {"pull": Role.reporter, "push": Role.developer, "delete": Role.developer}


def granted(
    emulator: GitLabEmulator, token: Token, repository_path: str, wanted: list[str]
) -> list[str]:
    """The registry actions ``token`` gets on ``repository_path``."""
    for project in emulator.projects.values():
        prefix = project.path_with_namespace
        if repository_path != prefix and not repository_path.startswith(prefix + "/"):
            continue
        if token.kind == "job" and token.job_project != project.id:
            return []
        role = project.members.get(token.user)
        if role is None:
            return []
        return [a for a in wanted if a in _ACTION_ROLES and role >= _ACTION_ROLES[a]]
    return []


def _registry_token(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    """GET /jwt/auth: GitLab's registry token endpoint (app/controllers/jwt_controller.rb).

    Follows Auth::ContainerRegistryAuthenticationService and the registry's token docs.
    HTTP Basic credentials: a user with an access token as password, or ``gitlab-ci-token``
    with a CI job token (user/packages/container_registry/authenticate_with_container_registry).
    Per requested ``scope=repository:PATH:ACTIONS``: see _ACTION_ROLES. Actions not granted are
    left out of the token, which is still issued (200); the registry then refuses the request
    with insufficient_scope. Bad credentials: 401.
    """
    issuer = emulator.issuer
    if issuer is None:
        raise no_route()
    username, password = _basic(request.headers.get("authorization", ""))
    registry = emulator.store.registry
    admin = (username, password) == (registry.username, registry.password)
    token = emulator.tokens.get(password)
    if not admin and (token is None or (token.kind == "job") != (username == "gitlab-ci-token")):
        return (
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]},
            {"WWW-Authenticate": 'Basic realm="GitLab"'},
        )
    access: list[dict[str, object]] = []
    for scope in urllib.parse.parse_qs(request.raw_query).get("scope", []):
        for item in scope.split(" "):
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if admin:
                allowed = wanted
            elif kind == "repository" and token is not None:
                allowed = granted(emulator, token, name, wanted)
            else:
                allowed = []
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
    subject = username if admin or token is None else token.user
    issuer.issued_to.append(username)
    return 200, {"token": issuer.issue(subject, access)}, {}


def _basic(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    except ValueError:
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


# The credentials travel as HTTP Basic, which resolve_caller does not read: the handler
# checks them itself, as JwtController#authenticate_user does.
REGISTRY_TOKEN = route(
    "GET",
    "/jwt/auth",
    tokens=PERSONAL_OR_JOB,
    prefix="",
    self_authenticating=True,
    source="app/controllers/jwt_controller.rb (HTTP Basic: user + token, or gitlab-ci-token)",
)(_registry_token)

ROUTES: list[Route] = [REGISTRY_TOKEN]
