"""A sweep's options, and the rules they make for the plan (domain/plan.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from registry_cleanup.domain.plan import SweepRules
from registry_cleanup.domain.refs import slugify
from registry_cleanup.domain.safety import ProtectionRules, TagPattern, compile_pattern
from registry_cleanup.errors import InputError
from registry_cleanup.pool import DEFAULT_CONCURRENCY


@dataclass(frozen=True)
class SweepOptions:
    """What a sweep may delete and how: the command's options, and a plan file's."""

    repositories: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    protect: tuple[str, ...] = ()
    protect_semver: bool = True
    keep_n: int | None = None
    older_than: timedelta | None = None
    min_age: timedelta = timedelta(minutes=5)
    default_branch: str | None = None
    delete: bool = False
    trust_branch_list: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    # Fetch the digest of every tag that may go even without an age rule (sweep --plan-out):
    # a plan is applied only to tags still at the digest it recorded.
    record_digests: bool = False

    def protection(self, default_branch: str | None) -> ProtectionRules:
        """Our own protection rules: the default branch's tag, --protect, release tags."""
        return ProtectionRules.build(
            default_branch_tag=slugify(default_branch) if default_branch else None,
            patterns=self.protect,
            protect_semver=self.protect_semver,
        )

    def rules(
        self, default_branch: str | None, gitlab_patterns: list[str], *, digests_required: bool
    ) -> SweepRules:
        """The plan's rules: ours, and GitLab's protected container tag rules that restrict
        this caller (``gitlab_patterns``, matched anywhere in a tag, as GitLab does)."""
        return SweepRules(
            protection=self.protection(default_branch),
            include=tuple(compile_pattern(p, option="--include") for p in self.include),
            exclude=tuple(compile_pattern(p, option="--exclude") for p in self.exclude),
            gitlab_protected=tuple(_gitlab_pattern(p) for p in gitlab_patterns),
            keep_n=self.keep_n,
            older_than=self.older_than,
            min_age=self.min_age,
            digests_required=digests_required,
        )

    def __post_init__(self) -> None:
        # A bad pattern is refused before the first request, not after listing every tag.
        for option, patterns in (
            ("--include", self.include),
            ("--exclude", self.exclude),
            ("--protect", self.protect),
        ):
            for pattern in patterns:
                compile_pattern(pattern, option=option)


def _gitlab_pattern(pattern: str) -> TagPattern:
    try:
        return compile_pattern(pattern, option="GitLab protected tag rule")
    except InputError:
        # A rule RE2 cannot read (GitLab should not have stored it): protect everything.
        return compile_pattern(".*")
