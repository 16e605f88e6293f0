"""A registry host as the user set it up: TLS, a CA file, and whether it is this machine."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from registry_cleanup.errors import InputError


class TlsMode(StrEnum):
    """How regctl talks to the registry: regctl's own three settings."""

    enabled = "enabled"
    insecure = "insecure"
    disabled = "disabled"


@dataclass(frozen=True)
class HostSettings:
    """One registry host as regctl's config file describes it."""

    tls: TlsMode = TlsMode.enabled
    ca_file: Path | None = None

    def as_config(self) -> dict[str, str]:
        config = {"tls": self.tls.value}
        if self.ca_file is not None:
            config["regcert"] = self.ca_file.read_text()
        return config


def is_loopback(host: str) -> bool:
    """True for a registry on this machine (localhost, 127.0.0.0/8, [::1]), any port."""
    name = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name.lower() == "localhost"


def tls_notice(host: str, tls: TlsMode) -> str | None:
    """The line to log when TLS protection is turned off for ``host``, or None.

    Plain HTTP to a loopback registry never leaves the machine (Docker allows it by default
    for the same reason), so only that case goes without a notice.
    """
    if tls is TlsMode.insecure:
        return f"notice: TLS certificate verification is off for {host} (--tls insecure)"
    if tls is TlsMode.disabled and not is_loopback(host):
        return (
            f"notice: plain HTTP to {host}: nothing is encrypted, credentials included "
            "(--tls disabled)"
        )
    return None


def check_ca_file(path: Path) -> None:
    """Refuse a CA file without a PEM certificate now, rather than as a TLS failure later."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a text file"
        raise InputError(f"--ca-file {path} cannot be read: {reason}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InputError(f"--ca-file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
