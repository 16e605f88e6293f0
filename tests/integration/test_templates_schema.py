"""GitLab's CI schema (check-jsonschema's vendored copy) on the components and the pipeline.

A component file is two YAML documents; the schema describes pipeline files, so only the `spec:`
header document is validated against it (the jobs document holds $[[ ]] interpolations that
only GitLab resolves). The project's .gitlab-ci.yml is validated whole.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool
from tests.support.gitlab_ci_local import ROOT, SchemaChecked
from tests.support.templates import TEMPLATES, NewProject, template_documents


@pytest.fixture(scope="module")
def check_jsonschema() -> str:
    return require_tool("check-jsonschema", shutil.which("check-jsonschema"))


def validate(check_jsonschema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [check_jsonschema, "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", TEMPLATES)
def test_spec_header_validates(check_jsonschema: str, tmp_path: Path, name: str) -> None:
    header, _ = template_documents(name)
    path = tmp_path / f"{name}-spec.yml"
    path.write_text(yaml.safe_dump(header, sort_keys=False))
    result = validate(check_jsonschema, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_header(check_jsonschema: str, tmp_path: Path) -> None:
    """The check above can fail: an input type GitLab does not know is refused."""
    header, _ = template_documents("branch-image")
    header["spec"]["inputs"]["dry_run"]["type"] = "yes-or-no"
    path = tmp_path / "broken-spec.yml"
    path.write_text(yaml.safe_dump(header, sort_keys=False))
    assert validate(check_jsonschema, path).returncode != 0


def test_project_pipeline_validates(check_jsonschema: str) -> None:
    result = validate(check_jsonschema, ROOT / ".gitlab-ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_input_is_described_typed_and_constrained(name: str) -> None:
    header, _ = template_documents(name)
    constrained = {"job_prefix", "pipelines", "delete_after", "auto_stop_in", "digest_expire_in"}
    constrained |= {"docker_version", "environment_prefix", "after"}
    for input_name, spec in header["spec"]["inputs"].items():
        assert spec.get("description"), input_name
        assert spec.get("type") in ("string", "boolean", "number", "array"), input_name
        if input_name in constrained:
            assert "options" in spec or "regex" in spec, input_name


# -- gitlab-ci-local's own check of the merged configuration ---------------------------------


def test_gitlab_ci_local_refuses_a_job_the_schema_does_not_allow_every_time(
    new_project: NewProject, schema_checked: SchemaChecked
) -> None:
    """The other template tests check each configuration once (SchemaChecked): a configuration
    whose check failed is checked again, and one that passed is not."""
    project = new_project()
    good = {"stages": ["test"], "job": {"stage": "test", "script": ["true"]}}
    project.write_pipeline(good)
    assert project.run("--list-json").returncode == 0
    assert schema_checked.has(schema_checked.key(project.directory, {}))

    project.write_pipeline({**good, "job": {**good["job"], "when": "sometimes"}})
    for _ in range(2):
        refused = project.run("--list-json")
        assert refused.returncode != 0
        assert "when" in refused.output, refused.output
    assert not schema_checked.has(schema_checked.key(project.directory, {}))
