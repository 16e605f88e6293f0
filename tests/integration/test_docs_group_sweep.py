"""docs/group-sweep.md agrees with templates/group-sweep.yml and with the report it describes,
and its example include gives the documented jobs under gitlab-ci-local."""

from __future__ import annotations

import json
import re

from registry_cleanup.output.group_report import group_document
from tests.support.gitlab_ci_local import ROOT, component
from tests.support.templates import NewProject, inputs_table, spec_inputs

DOC = ROOT / "docs" / "group-sweep.md"
README = ROOT / "README.md"
PUBLISHED = re.compile(r"\$CI_SERVER_FQDN/my-group/registry-cleanup/group-sweep@1\.0\.0")
MARKER = "<!-- inputs of group-sweep -->\n"


def written_table() -> str:
    text = DOC.read_text()
    assert MARKER in text
    return text.split(MARKER, 1)[1].split("\n\n", 1)[0] + "\n"


def test_inputs_table_matches_the_template() -> None:
    assert written_table() == inputs_table("group-sweep"), (
        "docs/group-sweep.md's inputs differ from templates/group-sweep.yml; regenerate with: "
        'scripts/with-env.sh python -c "from tests.support.templates import inputs_table; '
        "print(inputs_table('group-sweep'))\""
    )


def test_inputs_table_check_can_fail() -> None:
    inputs = spec_inputs("group-sweep")
    inputs["max_jobs"] = {**inputs["max_jobs"], "default": 7}
    assert inputs_table("group-sweep", inputs) != written_table()


def test_the_documented_report_has_the_reports_keys() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    example = json.loads(blocks[0])
    assert set(example) == set(group_document("acme", True, []))
    assert set(example["summary"]) == set(group_document("acme", True, [])["summary"])


def test_readme_links_the_page() -> None:
    assert "(docs/group-sweep.md)" in README.read_text()


def test_the_example_gives_the_documented_jobs(new_project: NewProject) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    assert PUBLISHED.search(blocks[0]), blocks[0]
    project = new_project("housekeeping")
    project.write_pipeline(PUBLISHED.sub(component("group-sweep"), blocks[0]))
    scheduled = project.jobs({"CI_PIPELINE_SOURCE": "schedule"})
    assert sorted(scheduled) == [
        "registry-cleanup:group-sweep",
        "registry-cleanup:group-sweep:plan",
    ]
    assert project.jobs() == {}
