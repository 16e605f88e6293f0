"""Secrets in the sweep: the job token (API and registry password at once, as on GitLab) stays
out of every regctl process's argv and environment, out of the output and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.fakes.fixtures import TokenAuth
from tests.fakes.gitlab_emulator import Role
from tests.support.proc_sampler import ProcSampler
from tests.support.regctl_spy import make_spy

# Registry behaviour: on distribution 2.8 (regctl's placeholder path) and v3 (DELETE by tag).
pytestmark = pytest.mark.both_registries

REPO = "group/app"


def test_sweep_via_registry_keeps_the_job_token_out_of_regctl_and_the_output(
    token_auth: TokenAuth, run_cli: RunCli, regctl_binary: str, tmp_path: Path
) -> None:
    emulator = token_auth.emulator
    project = emulator.add_project(REPO, branches=["main"])
    emulator.add_repository(project)
    for tag in ("main", "gone-1", "gone-2"):
        token_auth.pusher.push(REPO, tag)
    job_token = emulator.job_token(project, Role.developer)
    spy = make_spy(tmp_path / "spy", regctl_binary, trace=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    report = tmp_path / "report.json"
    host = token_auth.registry.host
    env = {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": job_token,
        "CI_REGISTRY": host,
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": job_token,
        "REGISTRY_CLEANUP_TLS": "disabled",
        "REGISTRY_CLEANUP_REGCTL": str(spy.path),
        "TMPDIR": str(scratch),
    }

    with ProcSampler(regctl_binary, interval=0.002) as sampler:
        result = run_cli(
            "sweep", "--delete", "--via", "registry", "--json", "--report", str(report), env=env
        )

    assert result.returncode == 0, result.output
    assert json.loads(result.stdout)["summary"]["deleted"] == 2
    assert token_auth.registry.tags(REPO) == ["main"]
    calls = spy.calls()
    assert [c["argv"][:2] for c in calls].count(["registry", "login"]) == 1
    for call in calls:
        assert job_token not in json.dumps(call["argv"])
        assert job_token not in json.dumps(call["env"])
        assert call["config_mode"] == 0o600
        assert call["dir_mode"] == 0o700
    for sample in sampler.samples:
        assert job_token not in "\0".join(sample.cmdline + sample.environ)
    assert job_token not in result.output
    assert job_token not in report.read_text()
    assert list(scratch.iterdir()) == []
