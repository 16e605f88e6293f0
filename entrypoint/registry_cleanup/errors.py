"""The two kinds of failure the CLI distinguishes by exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INPUT_ERROR = 2


class CleanupError(Exception):
    """Something went wrong while acting: exit 1. The message is one line for the user."""

    exit_code = EXIT_FAILURE


class InputError(CleanupError):
    """The request itself is wrong and nothing was attempted: exit 2."""

    exit_code = EXIT_INPUT_ERROR
