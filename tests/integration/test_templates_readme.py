"""The components' docs agree with the templates, and the README's examples work as written.

The inputs tables live in docs/components.md (reference), linked from the README's sections.
"""

from __future__ import annotations

import re

import pytest

from tests.support.gitlab_ci_local import DEFAULT_BRANCH_PIPELINE, FEATURE_BRANCH, ROOT, component
from tests.support.templates import TEMPLATES, NewProject, inputs_table, spec_inputs

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "components.md"
PUBLISHED = re.compile(r"\$CI_SERVER_FQDN/my-group/registry-cleanup/([a-z-]+)@1\.0\.0")


def components_section() -> str:
    text = README.read_text()
    start = text.index("\n## CI/CD components\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize("name", TEMPLATES)
def test_inputs_table_matches_the_template(name: str) -> None:
    reference = REFERENCE.read_text()
    marker = f"<!-- inputs of {name} -->\n"
    assert marker in reference
    written = reference.split(marker, 1)[1].split("\n\n", 1)[0] + "\n"
    assert written == inputs_table(name), (
        f"docs/components.md's inputs of {name} differ from templates/{name}.yml; "
        "regenerate with: scripts/with-env.sh python -m tests.support.templates"
    )
    # The README's section of the component points there.
    assert f"(docs/components.md#inputs-of-{name})" in components_section()


def test_inputs_table_check_can_fail() -> None:
    """A template whose default changed no longer matches the reference table."""
    inputs = spec_inputs("branch-image")
    inputs["delete_after"] = {**inputs["delete_after"], "default": "never"}
    assert inputs_table("branch-image", inputs) not in REFERENCE.read_text()
    assert inputs_table("branch-image") in REFERENCE.read_text()


def examples() -> dict[str, str]:
    blocks = re.findall(r"```yaml\n(.*?)```", components_section(), flags=re.DOTALL)
    found = {}
    for block in blocks:
        match = PUBLISHED.search(block)
        assert match, block
        found[match.group(1)] = block
    return found


EXPECTED_JOBS = {
    "branch-image": {"branch-image:build": "on_success", "branch-image:delete": "manual"},
    "delete-image": {
        "build-image": "on_success",
        "delete-image:start": "on_success",
        "delete-image:delete": "manual",
    },
}


def test_examples_give_the_documented_jobs(new_project: NewProject) -> None:
    found = examples()
    assert sorted(found) == sorted(TEMPLATES)
    for name, block in found.items():
        project = new_project(name)
        # Included from this checkout instead of the published catalog version.
        project.write_pipeline(PUBLISHED.sub(lambda m: component(m.group(1)), block))
        jobs = project.jobs(FEATURE_BRANCH)
        assert {job: info["when"] for job, info in jobs.items()} == EXPECTED_JOBS[name]
        on_default = project.jobs(DEFAULT_BRANCH_PIPELINE)
        assert not [job for job in on_default if job.startswith(name)]
