"""The two kinds of failure the CLI distinguishes by exit code, and the one error every tag
store raises (regctl's registry, GitLab's tag endpoint), so the safe delete knows none of them."""

from __future__ import annotations

from enum import StrEnum

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INPUT_ERROR = 2


class CleanupError(Exception):
    """Something went wrong while acting: exit 1. The message is one line for the user."""

    exit_code = EXIT_FAILURE


class InputError(CleanupError):
    """The request itself is wrong and nothing was attempted: exit 2."""

    exit_code = EXIT_INPUT_ERROR


class Failure(StrEnum):
    """What kind of failure a store met, whichever store it was."""

    not_found = "not-found"
    unauthorized = "unauthorized"
    denied = "denied"
    # GitLab refused the delete because a protected container tag rule covers the tag.
    protected = "protected"
    unsupported = "unsupported"
    plain_http = "plain-http"
    tls = "tls"
    unreachable = "unreachable"
    timeout = "timeout"
    other = "other"


class StoreError(CleanupError):
    """A tag store could not do what it was asked. ``detail`` is the store's own words,
    secrets removed."""

    def __init__(self, message: str, *, failure: Failure, detail: str = "") -> None:
        super().__init__(message)
        self.failure = failure
        self.detail = detail
