"""Which GitLab CI keywords and component features our own YAML uses, read from the parsed files.

Each feature is named the way GitLab's keyword reference (doc/ci/yaml/) names it:
`environment:deployment_tier`, `needs:optional`, `spec:inputs:regex`, `include:component`, plus
`$[[ inputs.* ]]` / `$[[ component.version ]]` interpolation, `!reference`, the `.post` stage and
the predefined variables (`CI_SERVER_FQDN`) the files reference. docs/components.md gives the
GitLab version that introduced each; tests/integration/test_templates_gitlab_versions.py checks
that every feature found here has a row there and that the README's minimum is their newest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.gitlab_ci_local import ROOT
from tests.support.templates import load_gitlab_yaml

# Top-level keys that are not jobs (doc/ci/yaml: "Global keywords").
GLOBAL_KEYWORDS = frozenset({"default", "include", "stages", "variables", "workflow"})
# Job keywords whose mapping (or list of mappings) holds keywords of their own. `variables` is
# left out on purpose: its keys are variable names, not keywords.
NESTED = frozenset(
    {
        "artifacts",
        "artifacts:reports",
        "cache",
        "environment",
        "environment:kubernetes",
        "image",
        "needs",
        "release",
        "rules",
        "services",
        "trigger",
        "trigger:include",
        "workflow",
        "workflow:rules",
        "inherit",
        "retry",
    }
)
_INTERPOLATION = re.compile(r"\$\[\[\s*(inputs|component)\.([A-Za-z0-9_-]+)\s*((?:\|[^\]]*)?)\]\]")
_FUNCTION = re.compile(r"\|\s*([a-z_]+)")
_PREDEFINED = re.compile(r"\$\{?(CI_[A-Z0-9_]+|GITLAB_[A-Z0-9_]+)")


def pipeline_files(root: Path = ROOT) -> list[Path]:
    """Every file GitLab reads as CI configuration here: components, pipeline, its includes."""
    templates = sorted((root / "templates").glob("*.yml"))
    templates += sorted((root / "templates").glob("*/template.yml"))
    return [*templates, root / ".gitlab-ci.yml", *sorted((root / ".gitlab" / "ci").glob("*.yml"))]


def _text_features(text: str) -> Iterator[str]:
    for kind, field, functions in _INTERPOLATION.findall(text):
        yield "$[[ inputs.* ]]" if kind == "inputs" else f"$[[ component.{field} ]]"
        for function in _FUNCTION.findall(functions):
            yield f"$[[ inputs.* | {function} ]]"
    yield from _PREDEFINED.findall(text)


def _value_features(node: Any) -> Iterator[str]:
    """Interpolation, !reference and predefined variables, wherever they appear (keys too)."""
    if isinstance(node, dict):
        if "!reference" in node:
            yield "!reference"
        for key, value in node.items():
            if isinstance(key, str):
                yield from _text_features(key)
            yield from _value_features(value)
    elif isinstance(node, list):
        for item in node:
            yield from _value_features(item)
    elif isinstance(node, str):
        yield from _text_features(node)


def _keyword_features(path: str, node: Any) -> Iterator[str]:
    """`path` and, for nested keywords, `path:child` for each child keyword."""
    yield path
    if path not in NESTED:
        return
    items = node if isinstance(node, list) else [node]
    for item in items:
        if isinstance(item, dict) and "!reference" not in item:
            for key, value in item.items():
                yield from _keyword_features(f"{path}:{key}", value)


def _header_features(header: dict[str, Any]) -> Iterator[str]:
    for key, value in header.get("spec", {}).items():
        yield f"spec:{key}"
        if key == "inputs":
            for spec in value.values():
                for input_key in spec or {}:
                    yield f"spec:inputs:{input_key}"
                # An input defaulting to `.post` puts the job in that stage.
                if (spec or {}).get("default") in (".pre", ".post"):
                    yield f"stage: {spec['default']}"


def _configuration_features(document: dict[str, Any]) -> Iterator[str]:
    for name, value in document.items():
        if name in GLOBAL_KEYWORDS:
            yield name
            if name == "include":
                for entry in value if isinstance(value, list) else [value]:
                    keys = entry if isinstance(entry, dict) else {"local": entry}
                    yield from (f"include:{key}" for key in keys)
            elif name == "stages":
                yield from (f"stage: {stage}" for stage in value if stage in (".pre", ".post"))
            else:
                yield from _keyword_features(name, value)
            continue
        # A job (hidden or not): its keywords.
        for key, job_value in (value or {}).items():
            yield from _keyword_features(key, job_value)
            if key == "stage" and job_value in (".pre", ".post"):
                yield f"stage: {job_value}"


def features_of(path: Path) -> set[str]:
    """The keywords and features one CI configuration file uses."""
    documents = [d for d in load_gitlab_yaml(path) if d is not None]
    found: set[str] = set()
    if len(documents) == 2:
        header, body = documents
        found |= set(_header_features(header))
    else:
        (body,) = documents
    found |= set(_configuration_features(body))
    found |= set(_value_features(body))
    return found


def used_features(root: Path = ROOT) -> dict[str, list[str]]:
    """Feature -> the files (relative to root) that use it."""
    users: dict[str, list[str]] = {}
    for path in pipeline_files(root):
        for feature in features_of(path):
            users.setdefault(feature, []).append(str(path.relative_to(root)))
    return users


if __name__ == "__main__":
    # List what the files use: python -m tests.support.ci_keywords
    for feature, files in sorted(used_features().items()):
        print(f"{feature}\t{', '.join(files)}")
