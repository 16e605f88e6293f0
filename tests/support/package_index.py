"""A package index on loopback that takes twine uploads the way PyPI and GitLab do.

Two servers in one, each answering as its source says:

- PyPI (pypi/warehouse): ``POST /pypi/_/oidc/mint-token`` trades an OIDC ID token for a
  short-lived API token (warehouse/oidc/views.py: 200 ``{"success": true, "token": ...}``, or 422
  ``{"message": "Token request failed", "errors": [{"code", "description"}]}``), and
  ``POST /pypi/legacy/`` takes twine's multipart upload with that token as the password of user
  ``__token__`` (docs/user/trusted-publishers/using-a-publisher.md).
- GitLab's PyPI package API (gitlabhq lib/api/pypi_packages.rb): ``POST
  /api/v4/projects/:id/packages/pypi`` with the same multipart fields (``content``, ``name``,
  ``version``, ``sha256_digest``...), a job token by basic auth (user ``gitlab-ci-token``),
  201 Created; a file of the same name twice: 400 (Packages::PackageFile validates the name).

It records every upload, with the credentials it came with, for the tests to check.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Upload:
    index: str  # "pypi" or "gitlab"
    filename: str
    name: str
    version: str
    sha256: str
    content_sha256: str  # of the bytes received, to compare with sha256 above
    username: str
    password: str


@dataclass
class PackageIndex:
    """PyPI's trusted publishing and upload, and one GitLab project's PyPI registry."""

    trusted_id_token: str
    gitlab_project_id: int
    gitlab_job_token: str
    minted_token: str = field(default_factory=lambda: "pypi-" + secrets.token_urlsafe(24))
    uploads: list[Upload] = field(default_factory=list)
    mint_requests: list[object] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def mint_token_url(self) -> str:
        return f"{self.url}/pypi/_/oidc/mint-token"

    @property
    def pypi_upload_url(self) -> str:
        return f"{self.url}/pypi/legacy/"

    @property
    def gitlab_api_url(self) -> str:
        return f"{self.url}/api/v4"

    def __enter__(self) -> PackageIndex:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                index._post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- the routes --------------------------------------------------------------------------

    def _post(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length", "0")))
        gitlab_route = f"/api/v4/projects/{self.gitlab_project_id}/packages/pypi"
        if http.path == "/pypi/_/oidc/mint-token":
            self._mint(http, body)
        elif http.path == "/pypi/legacy/":
            self._upload(http, body, "pypi", ("__token__", self.minted_token), 200)
        elif http.path == gitlab_route:
            self._upload(http, body, "gitlab", ("gitlab-ci-token", self.gitlab_job_token), 201)
        else:
            _reply(http, 404, {"message": "404 Not Found"})

    def _mint(self, http: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self.mint_requests.append(payload)
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str):
            error = {"code": "invalid-payload", "description": "token: field required"}
            _reply(http, 422, {"message": "Token request failed", "errors": [error]})
        elif token != self.trusted_id_token:
            error = {
                "code": "invalid-publisher",
                "description": "valid token, but no corresponding publisher",
            }
            _reply(http, 422, {"message": "Token request failed", "errors": [error]})
        else:
            _reply(http, 200, {"success": True, "token": self.minted_token})

    def _upload(
        self,
        http: BaseHTTPRequestHandler,
        body: bytes,
        index: str,
        credentials: tuple[str, str],
        created: int,
    ) -> None:
        username, password = _basic_auth(http.headers.get("Authorization", ""))
        if (username, password) != credentials:
            # PyPI: 403 "Invalid or non-existent authentication information."; GitLab: 401.
            status = 403 if index == "pypi" else 401
            _reply(http, status, {"message": f"{status} invalid credentials"})
            return
        fields = _multipart(http.headers.get("Content-Type", ""), body)
        content_name, content = fields["content"]
        upload = Upload(
            index=index,
            filename=content_name,
            name=fields["name"][1].decode(),
            version=fields["version"][1].decode(),
            sha256=fields["sha256_digest"][1].decode(),
            content_sha256=hashlib.sha256(content).hexdigest(),
            username=username,
            password=password,
        )
        if any(u.index == index and u.filename == upload.filename for u in self.uploads):
            _reply(http, 400, {"message": "Validation failed: File name has already been taken"})
            return
        self.uploads.append(upload)
        _reply(http, created, {"message": f"{created}"})


def _reply(http: BaseHTTPRequestHandler, status: int, document: object) -> None:
    data = json.dumps(document).encode()
    http.send_response(status)
    http.send_header("Content-Type", "application/json")
    http.send_header("Content-Length", str(len(data)))
    http.end_headers()
    http.wfile.write(data)


def _basic_auth(header: str) -> tuple[str, str]:
    match = re.fullmatch(r"Basic (\S+)", header)
    if not match:
        return "", ""
    username, _, password = base64.b64decode(match.group(1)).decode().partition(":")
    return username, password


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """Form field -> (file name or "", value), from twine's multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        fields[name] = (part.get_filename() or "", payload)
    return fields
