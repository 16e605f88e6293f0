"""Fixtures and readers shared by the tests of templates/ and .gitlab-ci.yml."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.support.gitlab_ci_local import ROOT, Project

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


@pytest.fixture
def new_project(tmp_path: Path, gitlab_ci_local: str) -> NewProject:
    def create(name: str = "project", **env: str) -> Project:
        return Project.create(tmp_path / name, gitlab_ci_local, env=env)

    return create
