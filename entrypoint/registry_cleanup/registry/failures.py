"""What kind of failure regctl met, judged from its one-line error (regctl has no error codes)."""

from __future__ import annotations

from registry_cleanup.errors import Failure

# Ordered: the first marker found in regctl's stderr decides. Lowercase.
_FAILURE_MARKERS: tuple[tuple[Failure, tuple[str, ...]], ...] = (
    (Failure.plain_http, ("server gave http response to https client",)),
    (Failure.tls, ("x509:", "tls: ", "certificate")),
    (
        Failure.unreachable,
        (
            "connection refused",
            "no such host",
            "network is unreachable",
            "i/o timeout",
            "connection reset",
            "eof",
        ),
    ),
    (
        Failure.unauthorized,
        ("http 401", "unauthorized", "authentication required", "incorrect username or password"),
    ),
    (Failure.denied, ("http 403", "denied", "insufficient_scope", "forbidden")),
    (Failure.unsupported, ("http 405", "unsupported", "method not allowed")),
    (Failure.not_found, ("http 404", "not found", "manifest unknown")),
)


def classify(stderr: str) -> Failure:
    lowered = stderr.lower()
    for failure, markers in _FAILURE_MARKERS:
        if any(marker in lowered for marker in markers):
            return failure
    return Failure.other


def error_line(stderr: str) -> str:
    """regctl's error: its last line that is neither a log record nor advice to run regctl."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("time=") and "regctl " not in line]
    return (errors or lines or [""])[-1]
