"""Reviewed plans: `sweep --plan-out`, then `sweep --apply` after the registry changed.

The real CLI, python-gitlab, the emulator and the real registry; the registry is changed
between plan and apply the way pipelines change it: a tag pushed again, a tag deleted, a new
branch for an orphaned tag, a new orphaned tag.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devkit.images import ImagePusher
from tests.conftest import RunCli, ci_env
from tests.fakes.fixtures import TokenAuth
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role

REPO = "group/app"
ORPHANS = ("gone-pushed-again", "gone-removed", "gone-unchanged", "gone-branch-back")


def seed(emulator: GitLabEmulator, pusher: ImagePusher) -> tuple[Project, dict[str, str]]:
    project = emulator.add_project(REPO, default_branch="main", branches=["main", "feature/live"])
    emulator.add_repository(project)
    digests = {tag: pusher.push(REPO, tag) for tag in ("main", "feature-live", *ORPHANS)}
    return project, digests


def env_for(emulator: GitLabEmulator, project: Project) -> dict[str, str]:
    return {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "GITLAB_TOKEN": emulator.personal_token(project, Role.developer),
    }


def make_plan(run_cli: RunCli, env: dict[str, str], plan: Path) -> dict[str, Any]:
    made = run_cli("sweep", "--plan-out", str(plan), "--min-age", "0s", env=env)
    assert made.returncode == 0, made.output
    document: dict[str, Any] = json.loads(plan.read_text())
    return document


def by_tag(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["tag"]: entry for entry in document["tags"]}


def test_plan_records_where_when_how_and_every_decision(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
) -> None:
    project, digests = seed(gitlab_emulator, pusher)
    before = pusher.registry.tags(REPO)
    env = env_for(gitlab_emulator, project)

    plan = make_plan(run_cli, env, tmp_path / "plan.json")

    assert pusher.registry.tags(REPO) == before, "--plan-out changed the registry"
    assert plan["kind"] == "plan"
    assert plan["instance"] == gitlab_emulator.url.removesuffix("/api/v4")
    assert plan["project"] == str(project.id)
    assert plan["repositories"][0]["path"] == REPO
    assert plan["options"]["min_age"] == 0
    assert plan["options"]["protect_semver"] is True
    assert plan["tool"].startswith("registry-cleanup ")
    made = datetime.fromisoformat(plan["created_at"])
    assert abs(datetime.now(UTC) - made) < timedelta(minutes=1)
    tags = by_tag(plan)
    assert {tag for tag, e in tags.items() if e["status"] == "would-delete"} == set(ORPHANS)
    for tag in ORPHANS:
        # Without an age rule the sweep would not know the digests; a plan must.
        assert tags[tag]["digest"] == digests[tag]
        assert tags[tag]["reason"].startswith("no branch or git tag has this slug")
    assert tags["feature-live"]["status"] == "kept"
    assert tags["feature-live"]["reason"] == "branch 'feature/live' still exists"
    assert env["GITLAB_TOKEN"] not in (tmp_path / "plan.json").read_text()


@pytest.mark.both_registries
def test_apply_deletes_only_what_is_unchanged_since_the_plan(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
) -> None:
    project, digests = seed(gitlab_emulator, pusher)
    env = env_for(gitlab_emulator, project)
    registry = pusher.registry
    plan = tmp_path / "plan.json"
    make_plan(run_cli, env, plan)

    # The registry moves on after the review.
    newer = pusher.push(REPO, "gone-pushed-again", seed="a newer pipeline")
    removed = run_cli("delete", f"{registry.host}/{REPO}:gone-removed", env=ci_env(registry))
    assert removed.returncode == 0, removed.output
    project.branches.append("gone-branch-back")
    appeared = pusher.push(REPO, "new-orphan")
    report = tmp_path / "applied.json"

    applied = run_cli("sweep", "--apply", str(plan), "--report", str(report), "--json", env=env)

    assert applied.returncode == 0, applied.output
    assert registry.tags(REPO) == sorted(
        ["main", "feature-live", "gone-pushed-again", "gone-branch-back", "new-orphan"]
    )
    assert registry.digest(REPO, "gone-pushed-again") == newer
    assert registry.digest(REPO, "new-orphan") == appeared
    tags = by_tag(json.loads(applied.stdout))
    assert tags["gone-unchanged"]["status"] == "deleted"
    assert tags["gone-pushed-again"]["status"] == "skipped"
    assert tags["gone-pushed-again"]["reason"] == (
        f"changed since the plan: the tag now points at {newer}, "
        f"not the planned {digests['gone-pushed-again']}"
    )
    assert tags["gone-removed"]["status"] == "absent"
    assert tags["gone-removed"]["reason"].startswith("changed since the plan: ")
    assert tags["gone-branch-back"]["status"] == "skipped"
    assert tags["gone-branch-back"]["reason"] == (
        "changed since the plan: now kept (branch 'gone-branch-back' still exists)"
    )
    assert tags["new-orphan"]["status"] == "kept"
    assert tags["new-orphan"]["reason"] == "appeared since the plan; not touched"
    assert tags["main"]["status"] == "kept"
    assert "deleted 1" in applied.stderr
    # The apply's report is a sweep report: restore undoes what the apply deleted.
    restored = run_cli("restore", "--report", str(report), env=ci_env(registry))
    assert restored.returncode == 0, restored.output
    assert registry.digest(REPO, "gone-unchanged") == digests["gone-unchanged"]


def rewrite(plan: Path, **changes: object) -> None:
    document = json.loads(plan.read_text())
    document.update(changes)
    plan.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "extra", "expected"),
    [
        ({"instance": "https://gitlab.other.example"}, [], "was made for GitLab https://gitlab"),
        ({"project": "group/other"}, [], "was made for project group/other, not "),
        (
            {"created_at": (datetime.now(UTC) - timedelta(days=8)).isoformat()},
            [],
            "more than --max-plan-age 7d; make a new plan",
        ),
        (
            {"created_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()},
            ["--max-plan-age", "1h"],
            "more than --max-plan-age 1h",
        ),
        (
            {"created_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            [],
            "is dated in the future",
        ),
        ({"kind": "sweep"}, [], "is not a plan; pass a file written by 'sweep --plan-out'"),
        ({"repositories": None}, [], "is incomplete or damaged"),
    ],
    ids=["instance", "project", "too-old", "max-plan-age", "future", "not-a-plan", "damaged"],
)
def test_a_plan_from_elsewhere_or_too_old_is_refused_and_nothing_deleted(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    tmp_path: Path,
    change: dict[str, object],
    extra: list[str],
    expected: str,
) -> None:
    project, _ = seed(gitlab_emulator, pusher)
    env = env_for(gitlab_emulator, project)
    plan = tmp_path / "plan.json"
    make_plan(run_cli, env, plan)
    rewrite(plan, **change)
    before = pusher.registry.tags(REPO)
    requests_before = gitlab_emulator.count("GET /projects/:id/repository/branches")
    assert requests_before > 0

    refused = run_cli("sweep", "--apply", str(plan), *extra, env=env)

    assert refused.returncode == 2, refused.output
    assert expected in refused.stderr
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert pusher.registry.tags(REPO) == before
    # Refused before GitLab was even asked.
    assert gitlab_emulator.count("GET /projects/:id/repository/branches") == requests_before


def test_the_same_project_by_another_name_and_the_plan_of_another_project(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
) -> None:
    project, _ = seed(gitlab_emulator, pusher)
    other = gitlab_emulator.add_project("group/other", branches=["main"])
    env = env_for(gitlab_emulator, project)
    plan = tmp_path / "plan.json"
    make_plan(run_cli, env, plan)
    before = pusher.registry.tags(REPO)

    elsewhere = run_cli("sweep", "--apply", str(plan), env={**env, "CI_PROJECT_ID": str(other.id)})
    by_path = run_cli("sweep", "--apply", str(plan), "--project", REPO, env=env)

    assert elsewhere.returncode == 2
    assert f"was made for project {project.id}, not {other.id}" in elsewhere.stderr
    # The same project named by path is refused too: a plan is bound to what it names.
    assert by_path.returncode == 2
    assert f"pass --project {project.id} if that is the same project" in by_path.stderr
    assert pusher.registry.tags(REPO) == before


def test_plan_out_with_delete_and_a_missing_plan_are_input_errors(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
) -> None:
    project, _ = seed(gitlab_emulator, pusher)
    env = env_for(gitlab_emulator, project)
    before = pusher.registry.tags(REPO)

    both = run_cli("sweep", "--plan-out", str(tmp_path / "p.json"), "--delete", env=env)
    missing = run_cli("sweep", "--apply", str(tmp_path / "nope.json"), env=env)

    assert both.returncode == 2
    assert "--plan-out makes a plan and deletes nothing; drop --delete" in both.stderr
    assert missing.returncode == 2
    assert "cannot read plan" in missing.stderr
    assert pusher.registry.tags(REPO) == before
    assert not (tmp_path / "p.json").exists()


@pytest.mark.both_registries
def test_apply_through_the_registry_with_a_job_token(
    token_auth: TokenAuth, run_cli: RunCli, tmp_path: Path
) -> None:
    emulator, registry, pusher = token_auth.emulator, token_auth.registry, token_auth.pusher
    project, digests = seed(emulator, pusher)
    job_token = emulator.job_token(project, Role.developer)
    env = {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": job_token,
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": job_token,
        "REGISTRY_CLEANUP_TLS": "disabled",
    }
    plan = tmp_path / "plan.json"
    make_plan(run_cli, env, plan)
    newer = pusher.push(REPO, "gone-pushed-again", seed="a newer pipeline")

    # One delete at a time, as in test_registry_tokens: distribution 2.8 races otherwise.
    applied = run_cli(
        "sweep",
        "--apply",
        str(plan),
        "--via",
        "registry",
        "--concurrency",
        "1",
        "--json",
        env=env,
    )

    assert applied.returncode == 0, applied.output
    assert registry.tags(REPO) == ["feature-live", "gone-pushed-again", "main"]
    assert registry.digest(REPO, "gone-pushed-again") == newer
    assert emulator.count("DELETE /projects/:id/registry/repositories/:rid/tags/:tag") == 0
    statuses = {t["tag"]: t["status"] for t in json.loads(applied.stdout)["tags"]}
    assert statuses == {
        "main": "kept",
        "feature-live": "kept",
        "gone-pushed-again": "skipped",
        "gone-removed": "deleted",
        "gone-unchanged": "deleted",
        "gone-branch-back": "deleted",
    }
    assert set(digests) == set(statuses)
    assert job_token not in applied.output
