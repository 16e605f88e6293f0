"""Options and output shared by the command groups: declared once, as typer Annotated aliases."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from registry_cleanup.domain.refs import REGISTRY_PATTERN
from registry_cleanup.errors import InputError
from registry_cleanup.registry.hosts import TlsMode


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


# -- logging in to the registry (delete, restore): the job's own credentials by default ------

RegistryOption = Annotated[
    str | None,
    typer.Option(
        envvar="CI_REGISTRY",
        metavar="HOST",
        help="Registry host the credentials are for.",
        show_default=False,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option(
        envvar="CI_REGISTRY_USER",
        metavar="USER",
        help="Registry user name.",
        show_default=False,
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the registry password from standard input (default: $CI_REGISTRY_PASSWORD).",
    ),
]
CaFileOption = Annotated[
    Path | None,
    typer.Option(
        envvar="REGISTRY_CLEANUP_CA_FILE",
        metavar="FILE",
        exists=True,
        dir_okay=False,
        help="PEM file with the CA that signed the registry's certificate.",
    ),
]
DockerConfigOption = Annotated[
    bool,
    typer.Option(
        "--docker-config", help="Also use credentials and certificates from the Docker config."
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        envvar="REGISTRY_CLEANUP_TIMEOUT",
        metavar="SECONDS",
        min=1.0,
        max=3600.0,
        help="Give up on one regctl call after SECONDS (regctl retries 429/5xx within it).",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show regctl's own messages.")]


def check_login_host(registry: str | None, image_host: str, *, what: str) -> str:
    """The host to log in to: --registry / $CI_REGISTRY, which must be the image's host."""
    if registry is None:
        return image_host
    if REGISTRY_PATTERN.fullmatch(registry) is None:
        raise InputError(
            f"registry {registry!r} is not a host name; write host or host:port, no scheme or path"
        )
    if registry != image_host:
        raise InputError(
            f"the credentials are for registry {registry} but {what} is on "
            f"{image_host}; pass --registry {image_host}"
        )
    return registry


def read_password(from_stdin: bool, username: str | None) -> str | None:
    """The registry password: from stdin with --password-stdin, else $CI_REGISTRY_PASSWORD."""
    if from_stdin:
        if not username:
            raise InputError("--password-stdin needs --username (or CI_REGISTRY_USER)")
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin read an empty password")
        return password
    password = os.environ.get("CI_REGISTRY_PASSWORD") or None
    if password and not username:
        raise InputError("CI_REGISTRY_PASSWORD is set but CI_REGISTRY_USER is not")
    return password


# -- a group's projects (sweep --group, group-pipeline) -----------------------------------

GroupOption = Annotated[
    str | None,
    typer.Option(
        "--group",
        envvar="REGISTRY_CLEANUP_GROUP",
        metavar="ID|PATH",
        help="Sweep every project of this group (ID or full path) that has container "
        "repositories, each with its own branches, rules and guard. Needs an access token.",
        show_default=False,
    ),
]
SubgroupsOption = Annotated[
    bool,
    typer.Option(
        "--subgroups/--no-subgroups",
        envvar="REGISTRY_CLEANUP_SUBGROUPS",
        help="With --group: include the projects of its subgroups.",
    ),
]
IncludeProjectOption = Annotated[
    list[str] | None,
    typer.Option(
        envvar="REGISTRY_CLEANUP_INCLUDE_PROJECT",
        metavar="REGEX",
        help="With --group: only projects whose full path matches REGEX (whole path). Repeatable.",
        show_default=False,
    ),
]
ExcludeProjectOption = Annotated[
    list[str] | None,
    typer.Option(
        envvar="REGISTRY_CLEANUP_EXCLUDE_PROJECT",
        metavar="REGEX",
        help="With --group: leave out projects whose full path matches REGEX. Repeatable.",
        show_default=False,
    ),
]
