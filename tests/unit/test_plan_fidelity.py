"""plan.py against GitLab as it is: git tags are live refs, signatures follow their subject,
GitLab's protected container tag rules match anywhere in the tag."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import re2

from registry_cleanup.domain.plan import Action, SweepRules, TagInfo, orphans, plan
from registry_cleanup.domain.refs import attached_subject
from registry_cleanup.domain.safety import (
    GitLabTagRule,
    ProtectionRules,
    gitlab_whole_tag,
    rules_restricting,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
IMAGE = "sha256:" + "a" * 64
INDEX = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64
SIGNATURE = "sha256:" + "d" * 64


def rules(**kwargs: object) -> SweepRules:
    return SweepRules(protection=ProtectionRules.build(default_branch_tag="main"), **kwargs)  # type: ignore[arg-type]


def by_tag(decisions):
    return {d.tag: d for d in decisions}


def test_the_image_of_a_live_git_tag_is_kept_and_the_plan_says_why():
    decisions = by_tag(
        plan(
            [TagInfo("release-2024-03"), TagInfo("release-2023-01")],
            ["main"],
            rules(),
            NOW,
            git_tags=["release/2024-03"],
        )
    )
    assert decisions["release-2024-03"].action is Action.keep
    assert decisions["release-2024-03"].reason == "git tag 'release/2024-03' still exists"
    assert decisions["release-2023-01"].action is Action.delete
    assert decisions["release-2023-01"].reason == "no branch or git tag has this slug"


def test_a_branch_and_a_git_tag_sharing_a_slug_are_both_named():
    [decision] = plan([TagInfo("x-1")], ["main", "x/1"], rules(), NOW, git_tags=["X-1"])
    assert decision.action is Action.keep
    assert decision.reason == "live refs branch 'x/1', git tag 'X-1' share this slug"


def test_attached_tags_are_recognised_by_cosign_and_oci_names():
    hex64 = "a" * 64
    for tag in (
        f"sha256-{hex64}",
        f"sha256-{hex64}.sig",
        f"sha256-{hex64}.att",
        f"sha256-{hex64}.sbom",
    ):
        assert attached_subject(tag) == IMAGE
    for tag in (f"sha256-{hex64[:-1]}", f"sha512-{hex64}", f"x-sha256-{hex64}.sig", "sha256-main"):
        assert attached_subject(tag) is None


def sig(digest: str, suffix: str = ".sig") -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


def test_a_signature_is_kept_while_any_tag_of_its_subject_is_kept():
    tags = [
        TagInfo("feature-live", digest=IMAGE),
        TagInfo("feature-gone", digest=IMAGE),
        TagInfo(sig(IMAGE), digest=SIGNATURE),
        TagInfo(sig(IMAGE, ".att"), digest=OTHER),
    ]
    decisions = by_tag(plan(tags, ["main", "feature-live"], rules(), NOW))
    assert decisions["feature-gone"].action is Action.delete
    for name in (sig(IMAGE), sig(IMAGE, ".att")):
        assert decisions[name].action is Action.keep
        assert decisions[name].reason == f"belongs to {IMAGE}, which tag 'feature-live' keeps"


def test_a_signature_goes_in_the_same_run_as_the_last_tags_of_its_subject():
    tags = [
        TagInfo("feature-a", digest=INDEX),
        TagInfo("feature-b", digest=INDEX),
        TagInfo(sig(INDEX), digest=SIGNATURE),
        TagInfo(sig(INDEX, ""), digest=OTHER),  # the OCI referrers fallback tag
    ]
    decisions = by_tag(plan(tags, ["main"], rules(), NOW))
    for name in (sig(INDEX), sig(INDEX, "")):
        assert decisions[name].action is Action.delete
        assert decisions[name].after == ("feature-a", "feature-b")
    assert decisions["feature-a"].after == ()


def test_a_signature_of_an_unknown_subject_is_kept_and_reported():
    decisions = by_tag(
        plan([TagInfo("feature-a", digest=IMAGE), TagInfo(sig(OTHER))], ["main"], rules(), NOW)
    )
    assert decisions[sig(OTHER)].action is Action.keep
    assert decisions[sig(OTHER)].notable
    assert "no tag of this repository points at" in decisions[sig(OTHER)].reason


def test_a_signature_is_kept_when_a_kept_tag_has_no_known_digest():
    tags = [TagInfo("feature-live"), TagInfo("gone", digest=IMAGE), TagInfo(sig(IMAGE))]
    decisions = by_tag(plan(tags, ["main", "feature-live"], rules(), NOW))
    assert decisions[sig(IMAGE)].action is Action.keep


def test_a_signature_of_a_signature_follows_the_chain():
    tags = [
        TagInfo("gone", digest=IMAGE),
        TagInfo(sig(IMAGE), digest=SIGNATURE),
        TagInfo(sig(SIGNATURE), digest=OTHER),
    ]
    decisions = by_tag(plan(tags, ["main"], rules(), NOW))
    assert decisions[sig(SIGNATURE)].action is Action.delete
    assert decisions[sig(SIGNATURE)].after == (sig(IMAGE),)
    kept = by_tag(plan(tags, ["main", "gone"], rules(), NOW))
    assert kept[sig(SIGNATURE)].action is Action.keep
    assert kept[sig(IMAGE)].action is Action.keep


def test_signatures_are_not_orphans_by_name_and_ignore_include():
    tags = [TagInfo("review-1", digest=IMAGE), TagInfo(sig(IMAGE), digest=SIGNATURE)]
    include = rules(include=(re2.compile("review-.*"),))
    assert orphans([t.name for t in tags], ["main"], include) == ["review-1"]
    decisions = by_tag(plan(tags, ["main"], include, NOW))
    assert decisions[sig(IMAGE)].action is Action.delete


def test_gitlab_tag_rules_match_anywhere_in_the_tag():
    decisions = by_tag(
        plan(
            [TagInfo("pre-release-1"), TagInfo("feature-1")],
            ["main"],
            rules(gitlab_protected=(re2.compile("release"),)),
            NOW,
        )
    )
    assert decisions["pre-release-1"].action is Action.keep
    assert decisions["pre-release-1"].reason == "protected by GitLab tag rule 'release'"
    assert decisions["feature-1"].action is Action.delete


def test_gitlab_tag_rules_restrict_callers_below_their_minimum_access_level():
    tag_rules = [
        GitLabTagRule("m", "maintainer"),
        GitLabTagRule("o", "owner"),
        GitLabTagRule("a", "admin"),
        GitLabTagRule("unknown", "superuser"),
    ]
    assert rules_restricting(tag_rules, 40) == ["o", "a", "unknown"]
    assert rules_restricting(tag_rules, 50) == ["a", "unknown"]
    assert rules_restricting(tag_rules, None) == ["m", "o", "a", "unknown"]


def test_whole_tag_patterns_for_gitlab():
    sent = gitlab_whole_tag("review-.*|feature-.*")
    assert sent == "(?:review-.*|feature-.*)"
    # What GitLab builds around it, \A#{regex}\z, now means the whole tag.
    assert re2.compile(rf"\A{sent}\z").search("old-feature-3") is None
    assert re2.compile(rf"\A{sent}\z").search("feature-3") is not None
    assert re.search(r"\Areview-.*|feature-.*\Z", "old-feature-3") is not None
