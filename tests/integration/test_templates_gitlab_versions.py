"""The minimum GitLab version the README states is the newest any keyword we use needs.

The keywords come from the parsed YAML (tests/support/ci_keywords.py), the versions from the
table in docs/components.md, each row citing the gitlabhq file that gives it.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.ci_keywords import features_of, pipeline_files, used_features
from tests.support.gitlab_ci_local import ROOT

DOC = ROOT / "docs" / "components.md"
README = ROOT / "README.md"
MINIMUM_IN_README = re.compile(r"The components need GitLab (\d+\.\d+) or later")
MINIMUM_IN_DOC = re.compile(r"The components need \*\*GitLab (\d+\.\d+)\*\* or later")
_ROW = re.compile(r"^\| `(?P<keyword>[^`]+)` \| (?P<version>[^|]+) \| (?P<source>[^|]+) \|$")


def parse_version(text: str) -> tuple[int, int]:
    """'18.7' -> (18, 7); '≤ 14.1' (a bound: present in 14.1) -> (14, 1)."""
    match = re.fullmatch(r"(?:≤ )?(\d+)\.(\d+)", text.strip())
    assert match, f"not a version: {text!r}"
    return int(match.group(1)), int(match.group(2))


def version_table() -> dict[str, tuple[int, int]]:
    text = DOC.read_text()
    table = text.split("<!-- keyword versions -->\n", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, tuple[int, int]] = {}
    for line in table.splitlines()[2:]:
        match = _ROW.match(line)
        assert match, f"docs/components.md: malformed keyword row: {line}"
        assert match["keyword"] not in rows, f"docs/components.md: {match['keyword']} twice"
        assert "`" in match["source"], f"{match['keyword']}: no gitlabhq path cited"
        rows[match["keyword"]] = parse_version(match["version"])
    return rows


def component_features() -> set[str]:
    templates = [path for path in pipeline_files() if "templates" in path.parts]
    assert templates
    return set().union(*(features_of(path) for path in templates))


def test_every_keyword_we_use_has_a_version_row_and_every_row_is_used() -> None:
    used = used_features()
    table = version_table()
    missing = {feature: files for feature, files in used.items() if feature not in table}
    assert not missing, (
        "keywords without a version row in docs/components.md (add the version and the "
        f"gitlabhq path that says so): {missing}"
    )
    unused = sorted(set(table) - set(used))
    assert not unused, f"rows for keywords nothing uses any more: {unused}"


def test_readme_minimum_is_the_newest_version_the_components_need() -> None:
    table = version_table()
    newest = max(table[feature] for feature in component_features())
    stated = MINIMUM_IN_README.findall(README.read_text())
    assert stated, "README: no 'The components need GitLab X.Y or later' line"
    assert {parse_version(version) for version in stated} == {newest}
    assert [parse_version(v) for v in MINIMUM_IN_DOC.findall(DOC.read_text())] == [newest]


def test_spec_description_is_not_used_below_its_version() -> None:
    """GitLab before 18.10 rejects `spec:description` (unknown keys): we decided against it."""
    assert "spec:description" not in component_features()


def test_a_new_keyword_without_a_row_is_found(tmp_path: Path) -> None:
    """The checks above can fail: a template that adds a keyword shows it as used."""
    template = (ROOT / "templates" / "delete-image.yml").read_text()
    header, body = template.split("\n---\n", 1)
    header = header.replace("spec:\n", "spec:\n  description: a catalog blurb\n", 1)
    body += "\nextra:\n  script: [echo]\n  environment:\n    name: x\n    url: https://x.example\n"
    changed = tmp_path / "templates" / "delete-image.yml"
    changed.parent.mkdir()
    changed.write_text(header + "\n---\n" + body)
    found = features_of(changed)
    assert {"spec:description", "environment:url"} <= found
    assert not {"spec:description", "environment:url"} & set(version_table())
