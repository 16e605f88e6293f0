"""Properties of refs.py and safety.py over arbitrary input (hypothesis).

The slug reference below is written from GitLab's Ruby expression in DESIGN.md, one character
at a time, independently of refs.slugify's regular expressions:
    name.downcase.gsub(/[^a-z0-9]/, '-')[0..62].gsub(/(\\A-+|-+\\z)/, '')
"""

from __future__ import annotations

import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from registry_cleanup.ci import CiContext
from registry_cleanup.errors import InputError
from registry_cleanup.refs import is_valid_tag, parse_image_ref, slugify, with_tag
from registry_cleanup.safety import SEMVER_PATTERN, ProtectionRules, verdict

settings.register_profile("properties", deadline=None, max_examples=300)
settings.load_profile("properties")

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
