"""GitLab's cleanup policy values, checked before anything is sent.

The allowed sets come from api/projects/ (``container_expiration_policy_attributes``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry_cleanup.domain.safety import gitlab_whole_tag
from registry_cleanup.errors import InputError

CADENCES = ("1d", "7d", "14d", "1month", "3month")
KEEP_N = (1, 5, 10, 25, 50, 100)
OLDER_THAN = ("7d", "14d", "30d", "90d")
REGEX_MAX_LENGTH = 255


def validate(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes to send, from those given (None = not given), or InputError naming the
    bad one. The regexes are grouped (safety.gitlab_whole_tag): GitLab's cleanup builds
    \\A#{name_regex}\\z and \\A#{name_regex_keep}\\z around them
    (app/services/projects/container_repository/cleanup_tags_base_service.rb), so ``a|b``
    would otherwise mean "starts with a, or ends with b". An empty regex is sent as it is."""
    given = {key: value for key, value in attributes.items() if value is not None}
    if "cadence" in given and given["cadence"] not in CADENCES:
        raise InputError(f"--cadence {given['cadence']!r} is not one of {', '.join(CADENCES)}")
    if "keep_n" in given and given["keep_n"] not in KEEP_N:
        allowed = ", ".join(map(str, KEEP_N))
        raise InputError(f"--keep-n {given['keep_n']} is not one of {allowed}")
    if "older_than" in given and given["older_than"] not in OLDER_THAN:
        raise InputError(
            f"--older-than {given['older_than']!r} is not one of {', '.join(OLDER_THAN)}"
        )
    for key in ("name_regex", "name_regex_keep"):
        if key in given:
            _check_regex(key, given[key])
            if given[key]:
                given[key] = gitlab_whole_tag(given[key])
                _check_length(key, given[key])
    return given


def _check_length(key: str, sent: str) -> None:
    if len(sent) > REGEX_MAX_LENGTH:
        limit = REGEX_MAX_LENGTH - len(gitlab_whole_tag(""))
        raise InputError(
            f"--{key.replace('_', '-')} is longer than {limit} characters (GitLab takes "
            f"{REGEX_MAX_LENGTH} with the group (?:...) that makes it match the whole tag)"
        )


def _check_regex(key: str, pattern: str) -> None:
    option = "--" + key.replace("_", "-")
    # GitLab uses RE2, which has no backreferences or lookaround; refuse those up front.
    if re.search(r"\\[1-9]|\(\?[=!<]", pattern):
        raise InputError(f"{option} {pattern!r} uses lookaround or backreferences, which RE2 lacks")
    try:
        re.compile(pattern)
    except re.error as error:
        raise InputError(
            f"{option} {pattern!r} is not a valid regular expression: {error}"
        ) from None
