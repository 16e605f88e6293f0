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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# GitLab's defaults (config/gitlab.yml: registry.issuer, and the registry's auth.token.service).
SERVICE = "container_registry"
ISSUER = "gitlab-issuer"
TOKEN_LIFETIME_SECONDS = 300


class TokenIssuer:
    def __init__(self) -> None:
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
