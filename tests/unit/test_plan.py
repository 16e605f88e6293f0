"""plan.py: examples and properties. For any input, protected and live tags survive."""

from __future__ import annotations

import operator
import re
import string
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from registry_cleanup.domain.durations import parse_duration
from registry_cleanup.domain.guard import broken_branch_list
from registry_cleanup.domain.plan import (
    Action,
    SweepRules,
    TagInfo,
    live_slugs,
    orphans,
    plan,
)
from registry_cleanup.domain.refs import TAG_PATTERN, slugify
from registry_cleanup.domain.safety import ProtectionRules, verdict

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rules(**kwargs) -> SweepRules:
    protection = kwargs.pop("protection", ProtectionRules.build(default_branch_tag="main"))
    return SweepRules(protection=protection, **kwargs)


def actions(decisions) -> dict[str, str]:
    return {d.tag: d.action.value for d in decisions}


def test_orphans_go_and_everything_else_stays_with_its_reason():
    tags = [
        TagInfo("main"),
        TagInfo("latest"),
        TagInfo("v1.2.3"),
        TagInfo("feature-live"),
        TagInfo("feature-gone"),
    ]
    decisions = plan(tags, ["main", "feature/live"], rules(), NOW)
    assert actions(decisions) == {
        "feature-gone": "delete",
        "feature-live": "keep",
        "latest": "keep",
        "main": "keep",
        "v1.2.3": "keep",
    }
    reasons = {d.tag: d.reason for d in decisions}
    assert reasons["feature-live"] == "branch 'feature/live' still exists"
    assert "always protected" in reasons["latest"]


def test_two_live_branches_sharing_a_slug_both_keep_it():
    [decision] = plan([TagInfo("feature-x")], ["Feature/X", "feature-x", "main"], rules(), NOW)
    assert decision.action is Action.keep
    assert "'Feature/X', 'feature-x' share this slug" in decision.reason


def test_include_exclude_and_gitlab_rules():
    tags = [TagInfo(t) for t in ("review-a", "review-keep", "other", "release-x")]
    decisions = plan(
        tags,
        ["main"],
        rules(
            include=(re.compile("review-.*"), re.compile("release-.*")),
            exclude=(re.compile(".*-keep"),),
            gitlab_protected=(re.compile("release-.*"),),
        ),
        NOW,
    )
    assert actions(decisions) == {
        "other": "keep",
        "release-x": "keep",
        "review-a": "delete",
        "review-keep": "keep",
    }


def test_keep_n_keeps_the_newest_orphans_and_older_than_the_recent_ones():
    tags = [TagInfo(f"t{n}", created_at=NOW - timedelta(days=n)) for n in range(1, 7)]
    by_count = plan(tags, ["main"], rules(keep_n=2), NOW)
    assert actions(by_count) == {
        "t1": "keep",
        "t2": "keep",
        "t3": "delete",
        "t4": "delete",
        "t5": "delete",
        "t6": "delete",
    }
    by_age = plan(tags, ["main"], rules(older_than=timedelta(days=4)), NOW)
    # Exactly 4 days old counts as old enough.
    assert [d.tag for d in by_age if d.action is Action.delete] == ["t4", "t5", "t6"]


def test_min_age_grace_and_unknown_age():
    tags = [
        TagInfo("fresh", created_at=NOW - timedelta(minutes=2)),
        TagInfo("old", created_at=NOW - timedelta(hours=1)),
        TagInfo("unknown"),
    ]
    decisions = plan(tags, ["main"], rules(min_age=timedelta(minutes=10)), NOW)
    assert actions(decisions) == {"fresh": "keep", "old": "delete", "unknown": "keep"}
    assert "(--min-age)" in {d.tag: d.reason for d in decisions}["fresh"]


def test_orphans_are_what_the_name_rules_would_delete():
    assert orphans(["a", "main", "latest", "b"], ["main", "B"], rules()) == ["a"]


def test_guard():
    assert broken_branch_list(3, [], None) == "the branch list is empty"
    assert broken_branch_list(0, [], "main") is None
    assert "default branch 'main'" in (broken_branch_list(1, ["dev"], "main") or "")
    assert broken_branch_list(11, ["main"], "main") is not None
    assert broken_branch_list(10, ["main"], "main") is None
    assert broken_branch_list(30, ["main", "b", "c"], "main") is None


def test_durations():
    assert parse_duration("7d", option="--older-than") == timedelta(days=7)
    assert parse_duration("1month", option="x") == timedelta(days=30)
    assert parse_duration("30m", option="x") == timedelta(minutes=30)


# -- properties -------------------------------------------------------------------------------

branch_names = st.text(alphabet=st.sampled_from("abcXYZ019-_/."), min_size=1, max_size=12)
# Every tag TAG_PATTERN allows, up to 20 characters, built directly: drawing from the pattern
# and filtering out the longer ones spent most of these tests' time generating and rejecting.
_TAG_FIRST = string.ascii_letters + string.digits + "_"
tag_names = st.builds(
    operator.add,
    st.sampled_from(_TAG_FIRST),
    st.text(alphabet=_TAG_FIRST + ".-", max_size=19),
)
patterns = st.sampled_from(["", "a.*", ".*-x", "[0-9]+", "feature-.*", "b"])
ages = st.one_of(
    st.none(), st.integers(min_value=0, max_value=400).map(lambda h: timedelta(hours=h))
)


@st.composite
def scenarios(draw):
    branches = draw(st.lists(branch_names, max_size=8))
    default = draw(st.one_of(st.none(), st.sampled_from(branches) if branches else st.none()))
    # Tags: arbitrary ones, plus slugs of live branches and of the default branch.
    tags = draw(st.lists(tag_names, max_size=12))
    tags += [s for s in (slugify(b) for b in branches) if s and TAG_PATTERN.fullmatch(s)]
    tags += draw(st.lists(st.sampled_from(["latest", "v1.0.0", "1.2"]), max_size=2))
    infos = [
        TagInfo(t, created_at=None if age is None else NOW - age)
        for t, age in zip(
            tags, draw(st.lists(ages, min_size=len(tags), max_size=len(tags))), strict=True
        )
    ]
    protect = [p for p in draw(st.lists(patterns, max_size=2)) if p]
    sweep_rules = SweepRules(
        protection=ProtectionRules.build(
            default_branch_tag=slugify(default) if default else None,
            patterns=protect,
            protect_semver=draw(st.booleans()),
        ),
        include=tuple(re.compile(p) for p in draw(st.lists(patterns, max_size=2)) if p),
        exclude=tuple(re.compile(p) for p in draw(st.lists(patterns, max_size=2)) if p),
        gitlab_protected=tuple(re.compile(p) for p in draw(st.lists(patterns, max_size=1)) if p),
        keep_n=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=4))),
        older_than=draw(ages),
        min_age=draw(st.sampled_from([timedelta(0), timedelta(minutes=10)])),
    )
    return infos, branches, sweep_rules


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_protected_default_live_or_latest_tag_is_ever_planned_for_deletion(scenario):
    infos, branches, sweep_rules = scenario
    decisions = plan(infos, branches, sweep_rules, NOW)
    live = live_slugs(branches)
    assert sorted(d.tag for d in decisions) == sorted({t.name for t in infos})
    for decision in decisions:
        if decision.action is not Action.delete:
            continue
        assert decision.tag != "latest"
        assert decision.tag != sweep_rules.protection.default_branch_tag
        assert verdict(decision.tag, sweep_rules.protection).allowed
        assert decision.tag not in live
        assert not any(p.search(decision.tag) for p in sweep_rules.gitlab_protected)
        assert not any(p.fullmatch(decision.tag) for p in sweep_rules.exclude)
        if sweep_rules.include:
            assert any(p.fullmatch(decision.tag) for p in sweep_rules.include)


@settings(max_examples=200, deadline=None)
@given(scenarios(), branch_names)
def test_another_live_branch_never_adds_a_deletion(scenario, extra_branch):
    infos, branches, sweep_rules = scenario
    before = {d.tag for d in plan(infos, branches, sweep_rules, NOW) if d.action is Action.delete}
    after = {
        d.tag
        for d in plan(infos, [*branches, extra_branch], sweep_rules, NOW)
        if d.action is Action.delete
    }
    # keep_n counts among orphans, so one fewer orphan may free no slot: deletions only shrink.
    assert after <= before


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_keep_n_leaves_that_many_orphans(scenario):
    infos, branches, sweep_rules = scenario
    decisions = plan(infos, branches, sweep_rules, NOW)
    orphaned = set(orphans([t.name for t in infos], branches, sweep_rules))
    deleted = {d.tag for d in decisions if d.action is Action.delete}
    assert deleted <= orphaned
    if sweep_rules.keep_n:
        assert len(orphaned - deleted) >= min(sweep_rules.keep_n, len(orphaned))


def _variant(name: str, flips: list[bool]) -> str:
    """Another branch name with the same slug: change case and swap separators."""
    out = []
    for character, flip in zip(name, flips + [False] * len(name), strict=False):
        if flip and character.isalpha():
            out.append(character.swapcase())
        elif flip and not character.isalnum():
            out.append("/" if character != "/" else "_")
        else:
            out.append(character)
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(branch_names, st.lists(st.booleans(), max_size=12), scenarios())
def test_a_slug_shared_by_two_live_branches_is_never_deleted(name, flips, scenario):
    infos, _, sweep_rules = scenario
    other = _variant(name, flips)
    slug = slugify(name)
    assert slugify(other) == slug
    if not slug or not TAG_PATTERN.fullmatch(slug):
        return
    decisions = plan([*infos, TagInfo(slug)], [name, other], sweep_rules, NOW)
    [decision] = [d for d in decisions if d.tag == slug]
    assert decision.action is Action.keep
