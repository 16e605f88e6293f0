"""Fixtures and readers shared by the tests of templates/ and .gitlab-ci.yml."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.support.gitlab_ci_local import ROOT, Project, SchemaChecked
from tests.support.once import run_directory

TEMPLATES = ("branch-image", "delete-image")


class GitlabLoader(yaml.SafeLoader):
    """YAML with GitLab's ``!reference [job, key]`` tag, read as {"!reference": [job, key]}."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    assert isinstance(node, yaml.SequenceNode)
    return {"!reference": loader.construct_sequence(node)}


GitlabLoader.add_constructor("!reference", _reference)


def load_gitlab_yaml(path: Path) -> list[Any]:
    return list(yaml.load_all(path.read_text(), Loader=GitlabLoader))


def template_documents(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A component file's two YAML documents: the spec header and the jobs."""
    header, body = load_gitlab_yaml(ROOT / "templates" / f"{name}.yml")
    return header, body


def spec_inputs(name: str) -> dict[str, dict[str, Any]]:
    header, _ = template_documents(name)
    inputs: dict[str, dict[str, Any]] = header["spec"]["inputs"]
    return inputs


@pytest.fixture(scope="session")
def gitlab_ci_local() -> str:
    return require_tool("gitlab-ci-local", shutil.which("gitlab-ci-local"))


NewProject = Callable[..., Project]


@pytest.fixture(scope="session")
def schema_checked(tmp_path_factory: pytest.TempPathFactory) -> SchemaChecked:
    """One record for the run, shared by its pytest-xdist workers."""
    return SchemaChecked(run_directory(tmp_path_factory) / "schema-checked")


@pytest.fixture
def new_project(tmp_path: Path, gitlab_ci_local: str, schema_checked: SchemaChecked) -> NewProject:
    def create(name: str = "project", **env: str) -> Project:
        return Project.create(
            tmp_path / name, gitlab_ci_local, env=env, schema_checked=schema_checked
        )

    return create


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _allowed(spec: dict[str, Any]) -> str:
    if "options" in spec:
        return ", ".join(f"`{option}`" for option in spec["options"])
    if "regex" in spec:
        return _cell(f"`{spec['regex']}`")
    return ""


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "required"
    value = spec["default"]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != "" else "empty"


def inputs_table(name: str, inputs: dict[str, dict[str, Any]] | None = None) -> str:
    """docs/components.md's inputs table for one component, made from its spec header."""
    lines = [
        "| Input | Type | Default | Allowed | Description |",
        "|---|---|---|---|---|",
    ]
    for input_name, spec in (inputs if inputs is not None else spec_inputs(name)).items():
        cells = [f"`{input_name}`", spec["type"], _default(spec), _allowed(spec)]
        cells.append(_cell(spec["description"].strip()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # Print the tables for pasting into docs/components.md: python -m tests.support.templates
    for component_name in TEMPLATES:
        print(f"<!-- inputs of {component_name} -->\n{inputs_table(component_name)}")
