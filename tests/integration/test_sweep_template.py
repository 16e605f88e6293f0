"""templates/sweep.yml: a valid component whose job runs the real sweep as configured."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, registry_environment
from tests.conftest import ROOT, require_tool
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role

TEMPLATE = ROOT / "templates" / "sweep.yml"
JOB = "registry-cleanup:sweep"
_INPUT = re.compile(r"\$\[\[ inputs\.([a-z_]+) \]\]")


def documents() -> tuple[dict[str, Any], str]:
    header_text, body_text = TEMPLATE.read_text().split("\n---\n", 1)
    return yaml.safe_load(header_text), body_text


def render(**overrides: object) -> dict[str, Any]:
    """Interpolate inputs the way GitLab does (booleans as true/false) and parse the jobs."""
    header, body = documents()
    values = {name: spec.get("default") for name, spec in header["spec"]["inputs"].items()}
    values.update(overrides)

    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    rendered = _INPUT.sub(lambda m: text(values[m.group(1)]), body)
    rendered = rendered.replace("$[[ component.version ]]", "1.0.0")
    loaded: dict[str, Any] = yaml.safe_load(rendered)
    return loaded


@pytest.mark.parametrize("part", [0, 1])
def test_both_documents_satisfy_gitlabs_ci_schema(tmp_path: Path, part: int):
    checker = require_tool("check-jsonschema", shutil.which("check-jsonschema"))
    header_text, body_text = TEMPLATE.read_text().split("\n---\n", 1)
    document = tmp_path / "document.yml"
    document.write_text([header_text, body_text][part])
    completed = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", str(document)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_every_input_is_used_and_only_known_inputs_are_referenced():
    header, body = documents()
    declared = set(header["spec"]["inputs"])
    used = set(_INPUT.findall(body))
    assert used == declared


def run_job(
    job: dict[str, Any], workdir: Path, ci: dict[str, str], *, log: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the job's script with its variables, as a runner would (GitLab expands nothing here).
    ``log``: stdout and stderr as one stream in order, as the job log shows them."""
    variables = {k: str(v) for k, v in job["variables"].items()}
    return subprocess.run(
        ["sh", "-ec", "\n".join(job["script"])],
        cwd=workdir,
        env={**registry_environment(), **variables, **ci},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def job_variables(
    emulator: GitLabEmulator, project: Project, registry: LocalRegistry
) -> dict[str, str]:
    """What GitLab gives the sweep job: the API, the project, a job token, the registry login."""
    return {
        "CI": "true",
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": emulator.job_token(project, Role.developer),
        "CI_DEFAULT_BRANCH": "main",
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "REGISTRY_CLEANUP_TLS": "disabled",
    }


def test_the_job_runs_a_dry_run_by_default_and_deletes_when_told(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, tmp_path: Path
):
    project = gitlab_emulator.add_project("group/app", branches=["main", "feature/live"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "feature-live", "review-gone", "other-gone"):
        pusher.push("group/app", tag)
    ci = job_variables(gitlab_emulator, project, pusher.registry)

    dry = run_job(render()[JOB], tmp_path, ci)

    assert dry.returncode == 0, dry.stderr
    report = json.loads((tmp_path / "registry-cleanup-sweep.json").read_text())
    assert report["dry_run"] is True
    assert report["summary"]["would-delete"] == 2
    assert pusher.registry.tags("group/app") == [
        "feature-live",
        "main",
        "other-gone",
        "review-gone",
    ]

    acting = run_job(render(dry_run=False, include="review-.* nothing-.*")[JOB], tmp_path, ci)

    assert acting.returncode == 0, acting.stderr
    assert pusher.registry.tags("group/app") == ["feature-live", "main", "other-gone"]
    report = json.loads((tmp_path / "registry-cleanup-sweep.json").read_text())
    assert report["summary"]["deleted"] == 1
    assert ci["CI_JOB_TOKEN"] not in acting.stdout + acting.stderr


def test_the_job_log_ends_with_what_the_sweep_frees(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, tmp_path: Path
):
    project = gitlab_emulator.add_project("group/app", branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push("group/app", "main", layers=("base", "main"))
    pusher.push("group/app", "review-gone", layers=("base", "gone"))
    ci = job_variables(gitlab_emulator, project, pusher.registry)

    sized = run_job(render()[JOB], tmp_path, ci, log=True)

    assert sized.returncode == 0, sized.stdout
    report = json.loads((tmp_path / "registry-cleanup-sweep.json").read_text())
    freed = report["summary"]["reclaimable_bytes"]
    assert freed > 0
    assert sized.stdout.splitlines()[-1].startswith(
        f"would free about {freed / 1000:.1f} kB of "
    ), sized.stdout
    assert 'id="storage"' in (tmp_path / "registry-cleanup-sweep.html").read_text()

    plain = run_job(render(sizes=False)[JOB], tmp_path, ci, log=True)

    assert plain.returncode == 0, plain.stdout
    assert "free" not in plain.stdout.splitlines()[-1]
    report = json.loads((tmp_path / "registry-cleanup-sweep.json").read_text())
    assert "reclaimable_bytes" not in report["summary"]
