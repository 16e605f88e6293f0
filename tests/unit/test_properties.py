"""Properties of refs.py and safety.py over arbitrary input (hypothesis).

The slug reference below is written from GitLab's Ruby expression in DESIGN.md, one character
at a time, independently of refs.slugify's regular expressions:
    name.downcase.gsub(/[^a-z0-9]/, '-')[0..62].gsub(/(\\A-+|-+\\z)/, '')
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from registry_cleanup.domain.ci import CiContext
from registry_cleanup.domain.plan import Action, SweepRules, TagInfo, plan
from registry_cleanup.domain.refs import (
    attached_subject,
    is_valid_tag,
    parse_image_ref,
    slugify,
    with_tag,
)
from registry_cleanup.domain.safety import (
    SEMVER_PATTERN,
    ProtectionRules,
    compile_pattern,
    gitlab_whole_tag,
    verdict,
)
from registry_cleanup.errors import InputError

settings.register_profile("properties", deadline=None, max_examples=300)
settings.load_profile("properties")

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SLUG_ALPHABET = set(string.ascii_lowercase + string.digits)


def gitlab_slug(name: str) -> str:
    """GitLab's rule, step by step: downcase, replace, cut to 63 (Ruby's [0..62]), trim dashes."""
    replaced = "".join(c if c in SLUG_ALPHABET else "-" for c in name.lower())
    cut = replaced[:63]
    start, end = 0, len(cut)
    while start < end and cut[start] == "-":
        start += 1
    while end > start and cut[end - 1] == "-":
        end -= 1
    return cut[start:end]


# Branch names as people write them, plus anything at all (Unicode, control characters).
branch_names = st.one_of(
    st.text(),
    st.text(alphabet=string.ascii_letters + string.digits + "-_./", max_size=100),
    st.from_regex(r"[A-Za-z][A-Za-z0-9]*(/[A-Za-z0-9._-]+){0,3}", fullmatch=True),
)


@given(branch_names)
def test_slug_matches_gitlabs_rule(name: str) -> None:
    assert slugify(name) == gitlab_slug(name)


@given(branch_names)
def test_a_slug_is_a_valid_tag_or_empty(name: str) -> None:
    slug = slugify(name)
    assert slug == "" or is_valid_tag(slug)
    assert len(slug) <= 63
    assert slugify(slug) == slug


@given(st.text())
def test_parse_never_yields_an_empty_or_invalid_tag(text: str) -> None:
    try:
        ref = parse_image_ref(text)
    except InputError:
        return
    assert ref.tag
    assert is_valid_tag(ref.tag)
    assert parse_image_ref(str(ref)) == ref


registries = st.sampled_from(
    ["registry.example.com", "127.0.0.1:5000", "localhost", "[::1]:443", "a.b:1", "group", ""]
)
repositories = st.one_of(
    st.sampled_from(["group/app", "g/sub/app", "app", "Group/App", "a__b", "a//b", ""]),
    st.text(alphabet=string.ascii_lowercase + "._-/", max_size=20),
)
tags = st.one_of(
    st.sampled_from(["", "latest", "main", "-x", ".x", "v1.2.3"]),
    st.text(alphabet=string.ascii_letters + string.digits + "._-:@ ", max_size=140),
)


@given(registries, repositories, tags)
def test_structured_refs_parse_to_what_they_say_or_are_refused(
    registry: str, repository: str, tag: str
) -> None:
    text = f"{registry}/{repository}:{tag}"
    try:
        ref = parse_image_ref(text)
    except InputError:
        return
    assert ref.tag
    assert is_valid_tag(ref.tag)
    assert str(ref) == text.strip()  # surrounding blanks (from a variable) are dropped
    assert "." in ref.registry or ":" in ref.registry or ref.registry == "localhost"


@given(st.sampled_from(["registry.example.com/group/app", "127.0.0.1:5000/a"]), branch_names)
def test_a_branch_image_reference_has_the_branch_slug_or_is_refused(image: str, name: str) -> None:
    try:
        ref = with_tag(image, slugify(name))
    except InputError:
        assert slugify(name) == ""
        return
    assert ref.tag == slugify(name) != ""


# -- safety -------------------------------------------------------------------------------

# Patterns from a small grammar both RE2 and Python's re read the same way, so Python's re can
# serve as an independent judge of what they match.
pattern_atoms = st.one_of(
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=6).map(
        re.escape
    ),
    st.sampled_from([".*", ".+", "[0-9]+", "[a-z]*", "(a|b)", "x?", "\\.", "-"]),
)
patterns = st.lists(pattern_atoms, min_size=1, max_size=5).map("".join)
tag_text = st.one_of(
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,40}", fullmatch=True),
    st.sampled_from(["latest", "main", "v1.2.3", "1.2", "feature-x", "release-1", "ab"]),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> tuple[ProtectionRules, str | None, list[str], bool]:
    default = draw(st.one_of(st.none(), tag_text))
    chosen = draw(st.lists(patterns, max_size=4))
    semver = draw(st.booleans())
    rules = ProtectionRules.build(
        default_branch_tag=default, patterns=chosen, protect_semver=semver
    )
    return rules, default, chosen, semver


@given(tag_text, rule_sets())
def test_allowed_only_when_no_rule_protects(
    tag: str, drawn: tuple[ProtectionRules, str | None, list[str], bool]
) -> None:
    rules, default, chosen, semver = drawn
    protected = (
        tag == "latest"
        or tag == default
        or (semver and re.fullmatch(SEMVER_PATTERN, tag) is not None)
        or any(re.fullmatch(p, tag) for p in chosen)
    )
    decision = verdict(tag, rules)
    assert decision.allowed == (not protected), decision.reason
    if not decision.allowed:
        assert tag in decision.reason


@given(rule_sets())
def test_latest_is_never_allowed(
    drawn: tuple[ProtectionRules, str | None, list[str], bool],
) -> None:
    assert not verdict("latest", drawn[0]).allowed


@given(branch_names, st.lists(patterns, max_size=3), st.booleans())
def test_the_default_branch_image_is_never_allowed(
    default_branch: str, chosen: list[str], semver: bool
) -> None:
    """Whatever the default branch is called, its slug — the tag its pipelines push — is kept."""
    ci = CiContext.from_env({"CI_DEFAULT_BRANCH": default_branch})
    rules = ProtectionRules.build(
        default_branch_tag=ci.default_branch_slug(), patterns=chosen, protect_semver=semver
    )
    slug = slugify(default_branch)
    if slug:
        assert not verdict(slug, rules).allowed


@given(tag_text, patterns)
def test_a_tag_matched_by_a_protect_pattern_is_never_allowed(tag: str, pattern: str) -> None:
    rules = ProtectionRules.build(
        default_branch_tag=None, patterns=[pattern, re.escape(tag)], protect_semver=False
    )
    assert not verdict(tag, rules).allowed


@given(st.from_regex(r"v?(0|[1-9][0-9]{0,3})(\.(0|[1-9][0-9]{0,3})){0,2}", fullmatch=True))
def test_release_versions_are_protected_by_default(version: str) -> None:
    rules = ProtectionRules.build(default_branch_tag=None)
    assert not verdict(version, rules).allowed


@given(st.text(alphabet="a", min_size=20, max_size=128))
def test_nested_quantifiers_match_in_linear_time(run: str) -> None:
    """(a+)+b against a run of a's backtracks for ages in Python's re; RE2 answers at once."""
    rules = ProtectionRules.build(
        default_branch_tag=None, patterns=["(a+)+b"], protect_semver=False
    )
    assert verdict(run + "-x", rules).allowed


# -- plan: live refs and attached tags --------------------------------------------------------

digests = st.sampled_from(["sha256:" + c * 64 for c in "0123abcd"])
ref_names = st.text(alphabet=st.sampled_from("abXY019-_/."), min_size=1, max_size=10)


def _attached(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


@st.composite
def repositories_with_signatures(draw: st.DrawFn) -> tuple[list[TagInfo], list[str], list[str]]:
    """Tags on a few digests, signature/attestation tags for some of those digests (and for
    digests no tag has), and the live branches and git tags, some of them owning tags."""
    branches = draw(st.lists(ref_names, max_size=5))
    git_tags = draw(st.lists(ref_names, max_size=5))
    names = draw(st.lists(tag_text, max_size=8))
    names += [s for s in (slugify(r) for r in branches + git_tags) if s and is_valid_tag(s)]
    infos = {name: TagInfo(name, digest=draw(digests)) for name in names}
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        name = _attached(draw(digests), draw(st.sampled_from(["", ".sig", ".att", ".sbom"])))
        infos[name] = TagInfo(name, digest=draw(digests))
    return list(infos.values()), branches, git_tags


@given(repositories_with_signatures(), st.lists(patterns, max_size=2))
def test_no_signature_is_deleted_while_a_tag_of_its_subject_is_kept(
    drawn: tuple[list[TagInfo], list[str], list[str]], gitlab_rules: list[str]
) -> None:
    infos, branches, git_tags = drawn
    rules = SweepRules(
        protection=ProtectionRules.build(default_branch_tag=None),
        gitlab_protected=tuple(compile_pattern(p) for p in gitlab_rules),
    )
    decisions = {d.tag: d for d in plan(infos, branches, rules, NOW, git_tags=git_tags)}
    kept_digests = {d.digest for d in decisions.values() if d.action is Action.keep}
    all_digests = {d.digest for d in decisions.values()}
    for decision in decisions.values():
        subject = attached_subject(decision.tag)
        if subject is None or decision.action is not Action.delete:
            continue
        assert subject not in kept_digests, decision.reason
        assert subject in all_digests  # an unknown subject is never a reason to delete
        # Everything it waits for is deleted in the same run, and is exactly its subject's tags.
        assert decision.after
        assert all(decisions[name].action is Action.delete for name in decision.after)
        assert {decisions[name].digest for name in decision.after} == {subject}


@given(repositories_with_signatures())
def test_no_tag_equal_to_a_live_branch_or_git_tag_slug_is_deleted(
    drawn: tuple[list[TagInfo], list[str], list[str]],
) -> None:
    infos, branches, git_tags = drawn
    live = {slugify(r) for r in branches + git_tags}
    rules = SweepRules(protection=ProtectionRules.build(default_branch_tag=None))
    for decision in plan(infos, branches, rules, NOW, git_tags=git_tags):
        if decision.tag in live:
            assert decision.action is Action.keep, decision.reason


@given(tag_text, patterns)
def test_gitlab_rules_keep_every_tag_they_match_anywhere(tag: str, pattern: str) -> None:
    """GitLab refuses the delete when the rule matches any part of the tag: so does the plan."""
    rules = SweepRules(
        protection=ProtectionRules.build(default_branch_tag=None, protect_semver=False),
        gitlab_protected=(compile_pattern(pattern),),
    )
    [decision] = plan([TagInfo(tag)], [], rules, NOW)
    if re.search(pattern, tag):
        assert decision.action is Action.keep


@given(patterns, tag_text)
def test_a_pattern_sent_to_gitlab_means_the_whole_tag_there(pattern: str, tag: str) -> None:
    """GitLab builds \\A#{regex}\\z; what we send matches exactly where our fullmatch does."""
    built = compile_pattern(rf"\A{gitlab_whole_tag(pattern)}\z")
    assert (built.search(tag) is not None) == (re.fullmatch(pattern, tag) is not None)
