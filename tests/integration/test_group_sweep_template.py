"""templates/group-sweep.yml: a valid component; its planning job, run by gitlab-ci-local against
the emulator, writes a child pipeline that GitLab's schema accepts and that gitlab-ci-local runs:
every readable project loses its orphans, the unreadable one loses nothing and is named in the
merged report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.images import ImagePusher
from tests.conftest import ROOT, require_tool
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.fakes.seed import seed_pushed_long_ago
from tests.support.gitlab_ci_local import Project, component
from tests.support.templates import NewProject, template_documents

TEMPLATE = ROOT / "templates" / "group-sweep.yml"
PLAN = "registry-cleanup:group-sweep:plan"
TRIGGER = "registry-cleanup:group-sweep"
SCHEDULE = {"CI_PIPELINE_SOURCE": "schedule"}
_INPUT = re.compile(r"\$\[\[ inputs\.([a-z_]+) \]\]")
# repository -> (tags, orphans)
LAYOUT = {
    "acme/app": (["main", "feature-live", "gone-app", "v2.0.0"], ["gone-app"]),
    "acme/sub/api": (["main", "gone-api-1", "gone-api-2"], ["gone-api-1", "gone-api-2"]),
    "acme/locked": (["main", "gone-locked"], []),
}


@pytest.fixture(scope="module")
def check_jsonschema() -> str:
    return require_tool("check-jsonschema", shutil.which("check-jsonschema"))


def schema_errors(checker: str, path: Path) -> str | None:
    completed = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if completed.returncode == 0 else completed.stdout + completed.stderr


@pytest.mark.parametrize("part", [0, 1])
def test_both_documents_satisfy_gitlabs_ci_schema(
    check_jsonschema: str, tmp_path: Path, part: int
) -> None:
    document = tmp_path / "document.yml"
    document.write_text(TEMPLATE.read_text().split("\n---\n", 1)[part])
    assert schema_errors(check_jsonschema, document) is None


def test_every_input_is_used() -> None:
    header, _ = template_documents("group-sweep")
    body = TEMPLATE.read_text().split("\n---\n", 1)[1]
    assert set(_INPUT.findall(body)) == set(header["spec"]["inputs"])


def estate(emulator: GitLabEmulator, pusher: ImagePusher) -> str:
    acme = emulator.add_group("acme")
    emulator.add_group("acme/sub")
    for path in LAYOUT:
        branches = ["main", "feature/live"] if path == "acme/app" else ["main"]
        project = emulator.add_project(path, branches=branches)
        project.repository_enabled = path != "acme/locked"
        emulator.add_repository(project)
        seed_pushed_long_ago(pusher, path, LAYOUT[path][0])
    return emulator.group_token(acme, Role.maintainer)


def variables_file(project: Project, variables: dict[str, Any]) -> None:
    """Project CI/CD variables (the masked token among them) as gitlab-ci-local's file."""
    (project.directory / ".gitlab-ci-local-variables.yml").write_text(json.dumps(variables))


def test_the_planning_job_writes_a_child_pipeline_that_validates_and_sweeps_the_group(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    new_project: NewProject,
    check_jsonschema: str,
) -> None:
    token = estate(gitlab_emulator, pusher)
    housekeeping = new_project("housekeeping")
    inputs = {"group": "acme", "dry_run": False, "max_jobs": 2, "image": "registry-cleanup:test"}
    housekeeping.write_pipeline(
        {"include": [{"component": component("group-sweep"), "inputs": inputs}]}
    )
    secrets = {"REGISTRY_CLEANUP_GROUP_TOKEN": token}
    variables_file(housekeeping, secrets)
    # GitLab's own variable: set on the command line, where gitlab-ci-local takes overrides.
    scheduled = {**SCHEDULE, "CI_API_V4_URL": gitlab_emulator.url}

    # Only scheduled (or web) pipelines get the jobs; the trigger job needs the plan.
    assert housekeeping.jobs() == {}
    jobs = housekeeping.jobs(SCHEDULE)
    assert sorted(jobs) == [TRIGGER, PLAN]
    merged = housekeeping.preview(SCHEDULE)
    assert merged[TRIGGER]["trigger"]["include"] == [
        {"artifact": "registry-cleanup-child.yml", "job": PLAN}
    ]
    forwarded = {k: str(v) for k, v in merged[TRIGGER]["variables"].items()}
    assert forwarded["REGISTRY_CLEANUP_DRY_RUN"] == "false"

    plan = housekeeping.run_jobs(PLAN, variables=scheduled)

    assert f"PASS  {PLAN}" in plan.output, plan.output
    assert token not in plan.output
    written = list(
        (housekeeping.directory / ".gitlab-ci-local").rglob("registry-cleanup-child.yml")
    )
    assert written, plan.output
    child_file = written[0]
    assert schema_errors(check_jsonschema, child_file) is None
    child_pipeline = json.loads(child_file.read_text())
    sweep_jobs = sorted(
        name for name in child_pipeline if name.startswith("registry-cleanup:sweep")
    )
    assert sweep_jobs == ["registry-cleanup:sweep 1/2", "registry-cleanup:sweep 2/2"]
    assert {r: pusher.registry.tags(r) for r in LAYOUT} == {
        r: sorted(tags) for r, (tags, _) in LAYOUT.items()
    }, "planning changed the registry"

    # GitLab runs the artifact as a child pipeline with the trigger job's variables.
    child = new_project("child")
    child.write_pipeline(child_file.read_text())
    variables_file(child, {**secrets, **forwarded})
    run = child.run_jobs(variables=scheduled)

    for repository, (tags, orphans) in LAYOUT.items():
        assert pusher.registry.tags(repository) == sorted(set(tags) - set(orphans)), run.output
    # The batch with the unreadable project fails; the other projects were swept all the same.
    assert "FAIL  registry-cleanup:sweep" in run.output, run.output
    assert "PASS  registry-cleanup:sweep" in run.output, run.output
    reports = list(
        (child.directory / ".gitlab-ci-local").rglob("registry-cleanup-group-sweep.json")
    )
    assert reports, run.output
    report = json.loads(reports[0].read_text())
    assert report["group"] == "acme"
    assert report["dry_run"] is False
    assert report["failed_projects"] == ["acme/locked"]
    assert report["summary"]["deleted"] == 3
    assert "could not list branches: 403 Forbidden" in next(
        s["error"] for s in report["projects"] if s["project"] == "acme/locked"
    )
    assert token not in run.output
    assert token not in reports[0].read_text()


def test_every_input_is_described_typed_and_constrained() -> None:
    header, _ = template_documents("group-sweep")
    for name, spec in header["spec"]["inputs"].items():
        assert spec.get("description"), name
        assert spec.get("type") in ("string", "boolean", "number"), name
        if name in ("job_prefix", "keep_n", "older_than", "min_age", "token_variable"):
            assert "regex" in spec, name
