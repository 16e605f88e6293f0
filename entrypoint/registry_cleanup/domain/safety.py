"""Protection rules: which tags must never be deleted, and why.

Protection always beats a request to delete: every deletion path asks ``verdict`` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import re2

from registry_cleanup.errors import InputError

# Release tags: v1, 1.2, v1.2.3, and with all three numbers a pre-release or build suffix
# (1.2.3-rc.1, 1.2.3+build.5). A branch slug such as v1-feature is not one.
_NUMBER = r"(?:0|[1-9][0-9]*)"
SEMVER_PATTERN = rf"v?{_NUMBER}(?:\.{_NUMBER}(?:\.{_NUMBER}(?:[-+][0-9A-Za-z.+-]+)?)?)?"
ALWAYS_PROTECTED_TAGS = frozenset({"latest"})


class TagPattern(Protocol):
    """A compiled protection pattern (an RE2 regexp); only these members are used."""

    @property
    def pattern(self) -> str: ...
    def fullmatch(self, text: str) -> object | None: ...
    def search(self, text: str) -> object | None: ...


def _re2_options() -> re2.Options:
    options = re2.Options()
    # RE2 otherwise prints its own parse errors on stderr, next to our one line.
    options.log_errors = False
    return options


def compile_pattern(pattern: str, *, option: str = "--protect") -> TagPattern:
    """Compile a user's regular expression; ours are matched against the whole tag
    (``fullmatch``), GitLab's protected tag rules anywhere in it (``search``).

    GitLab's tag patterns are RE2, so ours are too: the same syntax is accepted and refused
    (no backreferences or lookarounds), and matching takes linear time, so a pattern such as
    ``(a+)+`` cannot make a cleanup hang.
    """
    try:
        return re2.compile(pattern, _re2_options())
    except re2.error as error:
        reason = error.args[0] if error.args else "invalid"
        detail = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise InputError(
            f"{option} {pattern!r} is not a valid regular expression (RE2 syntax, as GitLab "
            f"uses): {detail}"
        ) from None


@dataclass(frozen=True)
class ProtectionRules:
    """What must survive: the default branch's tag, ``latest``, and protected patterns."""

    default_branch_tag: str | None = None
    patterns: tuple[TagPattern, ...] = field(default_factory=tuple)
    protect_semver: bool = True

    @classmethod
    def build(
        cls,
        *,
        default_branch_tag: str | None,
        patterns: Iterable[str] = (),
        protect_semver: bool = True,
    ) -> ProtectionRules:
        return cls(
            default_branch_tag=default_branch_tag or None,
            patterns=tuple(compile_pattern(p) for p in patterns),
            protect_semver=protect_semver,
        )


_SEMVER = re.compile(SEMVER_PATTERN)


@dataclass(frozen=True)
class Verdict:
    """Whether a tag may be deleted; when not, the reason says which rule kept it."""

    allowed: bool
    reason: str


def verdict(tag: str, rules: ProtectionRules) -> Verdict:
    """Decide whether ``tag`` may be deleted under ``rules``."""
    if tag in ALWAYS_PROTECTED_TAGS:
        return Verdict(False, f"tag {tag!r} is always protected")
    if rules.default_branch_tag is not None and tag == rules.default_branch_tag:
        return Verdict(False, f"tag {tag!r} is the default branch's image")
    if rules.protect_semver and _SEMVER.fullmatch(tag):
        return Verdict(False, f"tag {tag!r} looks like a release version")
    for pattern in rules.patterns:
        if pattern.fullmatch(tag):
            return Verdict(False, f"tag {tag!r} matches protected pattern {pattern.pattern!r}")
    return Verdict(True, "not protected")


# Gitlab::Access (lib/gitlab/access.rb): the roles' numeric levels, and ADMIN above OWNER.
ACCESS_LEVELS: dict[str, int] = {
    "guest": 10,
    "reporter": 20,
    "developer": 30,
    "maintainer": 40,
    "owner": 50,
    "admin": 60,
}


@dataclass(frozen=True)
class GitLabTagRule:
    """A protected container tag rule as GitLab's REST API lists it
    (lib/api/entities/projects/container_registry/protection/tag_rule.rb)."""

    tag_name_pattern: str
    minimum_access_level_for_delete: str | None = None


def gitlab_whole_tag(pattern: str) -> str:
    """The pattern to send GitLab so that it means the whole tag there.

    GitLab builds ``\\A#{regex}\\z`` around what it is given, with no group
    (app/services/projects/container_repository/cleanup_tags_base_service.rb), so ``a|b`` would
    mean "starts with a, or ends with b". A non-capturing group makes it "a or b, whole".
    """
    return f"(?:{pattern})"


def rules_restricting(rules: Iterable[GitLabTagRule], access_level: int | None) -> list[str]:
    """The patterns of the rules that stop a caller at ``access_level`` from deleting.

    GitLab applies a rule to callers whose access is below its
    ``minimum_access_level_for_delete`` (ContainerRegistry::Protection::TagRule
    .for_delete_and_access, used by Projects::ContainerRepository::Gitlab::DeleteTagsService
    #filter_out_protected!). Where we cannot tell, the rule counts: an unknown caller level
    (None) or a level name we do not know restricts, so the plan keeps more, never less.
    """
    restricting = []
    for rule in rules:
        needed = ACCESS_LEVELS.get(rule.minimum_access_level_for_delete or "")
        if access_level is None or needed is None or needed > access_level:
            restricting.append(rule.tag_name_pattern)
    return restricting


def gitlab_protects(tag: str, pattern: TagPattern) -> bool:
    """GitLab's match: ``Gitlab::UntrustedRegexp#match?`` finds the pattern anywhere in the tag
    (lib/gitlab/untrusted_regexp.rb), so ``release`` protects ``pre-release-1`` too."""
    return pattern.search(tag) is not None
