"""Options and output shared by the command groups: declared once, as typer Annotated aliases."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from registry_cleanup.regctl import TlsMode

PROG = "registry-cleanup"


class Via(StrEnum):
    registry = "registry"
    api = "api"


ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="CI_API_V4_URL",
        metavar="URL",
        help="GitLab API URL ending in /api/v4 (default: $CI_API_V4_URL).",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        envvar="CI_PROJECT_ID",
        metavar="ID|PATH",
        help="Project ID or path, e.g. 42 or group/app (default: $CI_PROJECT_ID).",
        show_default=False,
    ),
]
RepositoryOption = Annotated[
    str | None,
    typer.Option(
        "--repository",
        metavar="PATH",
        help="Container repository path, location or ID (default: the only one).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TlsOption = Annotated[
    TlsMode,
    typer.Option(
        envvar="REGISTRY_CLEANUP_TLS",
        case_sensitive=False,
        help="TLS to the registry: enabled, insecure (no verification) or disabled (plain HTTP).",
    ),
]
ProtectOption = Annotated[
    list[str] | None,
    typer.Option(
        envvar="REGISTRY_CLEANUP_PROTECT",
        metavar="REGEX",
        help="Never delete tags matching REGEX (RE2, whole tag). Repeatable; "
        "the environment variable takes space-separated patterns.",
        show_default=False,
    ),
]
ProtectSemverOption = Annotated[
    bool,
    typer.Option(
        "--protect-semver/--no-protect-semver",
        help="Protect release tags such as v1.2.3 and 1.2.",
    ),
]
ViaOption = Annotated[
    Via,
    typer.Option(
        envvar="REGISTRY_CLEANUP_VIA",
        case_sensitive=False,
        help="registry: regctl and the registry API, logged in once with CI_REGISTRY_USER / "
        "CI_REGISTRY_PASSWORD. api: GitLab's REST tag endpoint (GITLAB_TOKEN or CI_JOB_TOKEN).",
    ),
]


def stderr_line(message: str) -> None:
    """One line on stderr, prefixed with the command's name, as every message we print."""
    typer.echo(f"{PROG}: {message}", err=True)
