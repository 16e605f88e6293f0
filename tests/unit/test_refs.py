import pytest

from registry_cleanup.domain.refs import ImageRef, is_valid_tag, parse_image_ref, slugify, with_tag
from registry_cleanup.errors import InputError

# The examples of GitLab's own spec for Gitlab::Utils.slugify (spec/lib/gitlab/utils_spec.rb).
GITLAB_SLUG_EXAMPLES = {
    "TEST": "test",
    "project_with_underscores": "project-with-underscores",
    "namespace/project": "namespace-project",
    "a" * 70: "a" * 63,
    "test_trailing_": "test-trailing",
}


@pytest.mark.parametrize(("name", "slug"), GITLAB_SLUG_EXAMPLES.items())
def test_slug_matches_gitlab_spec_examples(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Feature/X", "feature-x"),
        ("feature-x", "feature-x"),  # a collision with the line above, as on GitLab
        ("---", ""),
        ("", ""),
        ("_leading", "leading"),
        ("dots.and.more", "dots-and-more"),
        ("ünïcödé/branch", "n-c-d--branch"),
        # cut to 63 first, then the trailing dashes that the cut exposed are removed
        ("a" * 62 + "/b", "a" * 62),
        ("/" * 5 + "x", "x"),
    ],
)
def test_slug_rule_edge_cases(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_parse_full_reference() -> None:
    ref = parse_image_ref("registry.example.com:5000/group/app:feature-x")
    assert ref == ImageRef("registry.example.com:5000", "group/app", "feature-x")
    assert str(ref) == "registry.example.com:5000/group/app:feature-x"
    assert ref.repository_ref == "registry.example.com:5000/group/app"
    assert ref.at_digest("sha256:" + "a" * 64) == (
        "registry.example.com:5000/group/app@sha256:" + "a" * 64
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registry.example.com/group/app", "has no tag"),
        ("registry.example.com/group/app:", "empty tag"),
        ("registry.example.com:5000/group/app", "has no tag"),
        ("app:tag", "has no tag"),
        ("", "is empty"),
        ("https://registry.example.com/group/app:x", "URL scheme"),
        ("registry.example.com/Group/App:x", "invalid repository path"),
        ("registry.example.com/group/app:-x", "invalid tag"),
        ("registry.example.com/group/app:" + "x" * 129, "invalid tag"),
        ("registry.example.com/group/app@sha256:" + "a" * 64, "digest"),
        ("bad_host!/group/app:x", "invalid registry host"),
    ],
)
def test_parse_rejects_what_is_not_one_tag(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_image_ref(text)


def test_with_tag_validates_both_parts() -> None:
    assert with_tag("r.example.com/g/p", "t").tag == "t"
    with pytest.raises(InputError, match="empty tag"):
        with_tag("r.example.com/g/p", "")


@pytest.mark.parametrize("tag", ["a", "A_b.c-d", "_x", "x" * 128, "1.2.3"])
def test_valid_tags(tag: str) -> None:
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "x" * 129, "a/b", "a:b", "a b"])
def test_invalid_tags(tag: str) -> None:
    assert not is_valid_tag(tag)
