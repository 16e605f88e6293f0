import pytest

from registry_cleanup.domain.ci import CiContext
from registry_cleanup.domain.refs import ImageRef
from registry_cleanup.errors import InputError

IMAGE = "registry.example.com/group/app"


def context(**env: str) -> CiContext:
    return CiContext.from_env(env)


def test_target_is_registry_image_with_ref_slug() -> None:
    ci = context(CI_REGISTRY_IMAGE=IMAGE, CI_COMMIT_REF_SLUG="feature-x")
    assert ci.target_ref(None) == ImageRef("registry.example.com", "group/app", "feature-x")


def test_slug_is_computed_from_ref_name_when_slug_unset() -> None:
    ci = context(CI_REGISTRY_IMAGE=IMAGE, CI_COMMIT_REF_NAME="Feature/Login_Page")
    assert ci.target_ref(None).tag == "feature-login-page"


def test_empty_slug_variable_counts_as_unset() -> None:
    ci = context(CI_REGISTRY_IMAGE=IMAGE, CI_COMMIT_REF_SLUG="", CI_COMMIT_REF_NAME="Dev")
    assert ci.target_ref(None).tag == "dev"


def test_explicit_reference_wins_over_variables() -> None:
    ci = context(CI_REGISTRY_IMAGE=IMAGE, CI_COMMIT_REF_SLUG="feature-x")
    assert ci.target_ref("other.example.com/a/b:c") == ImageRef("other.example.com", "a/b", "c")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CI_COMMIT_REF_SLUG": "x"}, "CI_REGISTRY_IMAGE"),
        ({"CI_REGISTRY_IMAGE": IMAGE}, "CI_COMMIT_REF_SLUG and CI_COMMIT_REF_NAME"),
        ({"CI_REGISTRY_IMAGE": IMAGE, "CI_COMMIT_REF_NAME": "---"}, "empty slug"),
        ({"CI_REGISTRY_IMAGE": IMAGE, "CI_COMMIT_REF_NAME": "///"}, "empty slug"),
        ({"CI_REGISTRY_IMAGE": "not a registry", "CI_COMMIT_REF_SLUG": "x"}, "CI_REGISTRY_IMAGE"),
    ],
)
def test_missing_or_unusable_variables_are_input_errors(env: dict[str, str], named: str) -> None:
    with pytest.raises(InputError, match=named):
        CiContext.from_env(env).target_ref(None)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CI_DEFAULT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"}, True),
        ({"CI_DEFAULT_BRANCH": "main", "CI_COMMIT_BRANCH": "main"}, True),
        ({"CI_DEFAULT_BRANCH": "main", "CI_COMMIT_REF_NAME": "feature"}, False),
        ({"CI_COMMIT_REF_NAME": "main"}, False),
    ],
)
def test_default_branch_pipeline(env: dict[str, str], expected: bool) -> None:
    assert CiContext.from_env(env).is_default_branch_pipeline() is expected


def test_default_branch_slug() -> None:
    assert context(CI_DEFAULT_BRANCH="Release/Main").default_branch_slug() == "release-main"
    assert context().default_branch_slug() is None
