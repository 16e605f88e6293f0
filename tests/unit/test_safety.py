import pytest

from registry_cleanup.domain.safety import ProtectionRules, verdict
from registry_cleanup.errors import InputError


def rules(*patterns: str, default: str | None = "main", semver: bool = True) -> ProtectionRules:
    return ProtectionRules.build(
        default_branch_tag=default, patterns=patterns, protect_semver=semver
    )


@pytest.mark.parametrize("tag", ["latest", "main", "v1.2.3", "1.2", "v1", "2.0.0-rc.1", "1.2.3+b5"])
def test_protected_by_default(tag: str) -> None:
    decision = verdict(tag, rules())
    assert not decision.allowed
    assert tag in decision.reason


@pytest.mark.parametrize("tag", ["feature-x", "v1-feature", "release-1-2", "1-2-3", "mainline"])
def test_ordinary_branch_tags_are_allowed(tag: str) -> None:
    assert verdict(tag, rules()).allowed


def test_semver_protection_can_be_turned_off_but_latest_and_default_cannot() -> None:
    relaxed = rules(semver=False)
    assert verdict("v1.2.3", relaxed).allowed
    assert not verdict("latest", relaxed).allowed
    assert not verdict("main", relaxed).allowed


def test_patterns_match_the_whole_tag() -> None:
    custom = rules("release-.*", "stable")
    assert not verdict("release-2024", custom).allowed
    assert not verdict("stable", custom).allowed
    assert verdict("not-stable", custom).allowed  # not a search: anchored like GitLab's regexes
    assert "release-.*" in verdict("release-2024", custom).reason


def test_invalid_pattern_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a valid regular expression"):
        rules("feature-(")
