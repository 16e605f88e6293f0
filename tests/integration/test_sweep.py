"""registry-cleanup sweep, end to end: the CLI, python-gitlab, the emulator, the real registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devkit.images import ImagePusher
from devkit.local_registry import registry_environment
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.fakes.seed import push_created
from tests.fakes.terminal import run_in_terminal

REPO = "group/app"


def api_env(emulator: GitLabEmulator, project: Project, token: str, **extra: str) -> dict[str, str]:
    return {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "GITLAB_TOKEN": token,
        **extra,
    }


def seed_mixed(emulator: GitLabEmulator, pusher: ImagePusher) -> tuple[Project, dict[str, str]]:
    """Live, dead and colliding branches; latest, releases, the default branch, shared digests."""
    project = emulator.add_project(
        REPO,
        default_branch="main",
        branches=["main", "feature/live", "Feature/X", "feature-x", "fix/Ü"],
    )
    emulator.add_repository(project)
    digests = {}
    for tag in ("main", "feature-live", "feature-x", "fix", "feature-gone", "old-fix", "latest"):
        digests[tag] = pusher.push(REPO, tag)
    for tag in ("v1.2.3", "1.0"):
        digests[tag] = pusher.push(REPO, tag)
    # An orphan sharing its digest with a live branch's tag.
    digests["copy-of-live"] = pusher.tag(REPO, "feature-live", "copy-of-live")
    return project, digests


def test_sweep_deletes_exactly_the_orphans(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
):
    project, digests = seed_mixed(gitlab_emulator, pusher)
    token = gitlab_emulator.personal_token(project, Role.developer)
    env = api_env(gitlab_emulator, project, token)
    before = pusher.registry.tags(REPO)

    dry = run_cli("sweep", "--json", env=env)

    assert dry.returncode == 0, dry.stderr
    assert pusher.registry.tags(REPO) == before, "a dry run changed the registry"
    document = json.loads(dry.stdout)
    planned = sorted(t["tag"] for t in document["tags"] if t["status"] == "would-delete")
    assert planned == ["copy-of-live", "feature-gone", "old-fix"]
    assert document["dry_run"] is True
    assert gitlab_emulator.count("DELETE /projects/:id/registry/repositories/:rid/tags/:tag") == 0

    report = tmp_path / "artifacts" / "sweep.json"
    done = run_cli("sweep", "--delete", "--report", str(report), env=env)

    assert done.returncode == 0, done.stderr
    assert pusher.registry.tags(REPO) == sorted(
        ["main", "feature-live", "feature-x", "fix", "latest", "v1.2.3", "1.0"]
    )
    # The live tag that shared a digest with a deleted orphan still points at it.
    assert pusher.registry.digest(REPO, "feature-live") == digests["feature-live"]
    written = json.loads(report.read_text())
    assert written["summary"]["deleted"] == 3
    assert written["summary"]["failed"] == 0
    reasons = {t["tag"]: t["reason"] for t in written["tags"]}
    assert "'Feature/X', 'feature-x' share this slug" in reasons["feature-x"]
    assert "default branch" in reasons["main"]
    assert "deleted 3" in done.stderr
    for text in (dry.stdout, dry.stderr, done.stdout, done.stderr, report.read_text()):
        assert token not in text


def test_sweep_with_a_job_token_and_include_exclude(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "review-a", "review-b", "review-keep", "other"):
        pusher.push(REPO, tag)
    token = gitlab_emulator.job_token(project, Role.developer)
    env = {
        "CI_API_V4_URL": gitlab_emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": token,
    }

    result = run_cli(
        "sweep", "--delete", "--include", "review-.*", "--exclude", ".*-keep", "--json", env=env
    )

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["main", "other", "review-keep"]
    # A job token cannot read protected tag rules; the sweep says so and carries on.
    assert "protected container tag rules" in result.stderr


def test_retention_by_count_and_age(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
):
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    now = datetime.now(UTC)
    pusher.push(REPO, "main")
    ages = {"day1": 1, "day3": 3, "day10": 10, "day20": 20, "day30": 30}
    for tag, days in ages.items():
        push_created(pusher, tmp_path, REPO, tag, now - timedelta(days=days))
    push_created(pusher, tmp_path, REPO, "just-now", now)
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    by_age = run_cli("sweep", "--delete", "--older-than", "7d", "--json", env=env)

    assert by_age.returncode == 0, by_age.stderr
    assert pusher.registry.tags(REPO) == sorted(["main", "day1", "day3", "just-now"])

    by_count = run_cli("sweep", "--delete", "--keep-n", "1", "--json", env=env)

    assert by_count.returncode == 0, by_count.stderr
    # day1 is the newest old-enough orphan kept by --keep-n; just-now is inside --min-age.
    # keep-n counts just-now too (newest first), so day1 and day3 go.
    assert pusher.registry.tags(REPO) == ["just-now", "main"]


def test_guard_refuses_a_broken_branch_list_unless_trusted(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, default_branch="main", branches=[])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "a", "b"):
        pusher.push(REPO, tag)
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    refused = run_cli("sweep", "--delete", "--default-branch", "main", env=env)

    assert refused.returncode == 1
    assert "branch list looks broken: the branch list is empty" in refused.stderr
    assert "--trust-branch-list" in refused.stderr
    assert pusher.registry.tags(REPO) == ["a", "b", "main"]

    trusted = run_cli(
        "sweep", "--delete", "--default-branch", "main", "--trust-branch-list", env=env
    )

    assert trusted.returncode == 0, trusted.stderr
    assert pusher.registry.tags(REPO) == ["main"]


def test_requests_per_sweep(gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli):
    """Listing reads each page once (tags with digests and creation times from one GraphQL
    page); the page's orphans then cost two requests together: that page read again (the digest
    check) and one mutation deleting them."""
    project = gitlab_emulator.add_project(REPO, branches=["main", *[f"b{n}" for n in range(150)]])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main")
    for n in range(3):
        pusher.tag(REPO, "main", f"gone-{n}")
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    result = run_cli("sweep", "--delete", "--concurrency", "2", env=env)

    assert result.returncode == 0, result.stderr
    counts = gitlab_emulator.requests
    assert counts["GET /projects/:id/repository/branches"] == 2  # 151 branches, 100 per page
    assert counts["GET /projects/:id/registry/repositories"] == 1
    assert counts["POST /api/graphql"] == 3
    assert gitlab_emulator.graphql_fields == {
        "containerRepository": 2,
        "destroyContainerRepositoryTags": 1,
    }
    assert counts["GET /projects/:id/registry/repositories/:rid/tags"] == 0
    assert counts["GET /projects/:id/registry/protection/tag/rules"] == 1
    assert counts["GET /projects/:id/registry/repositories/:rid/tags/:tag"] == 0
    assert counts["DELETE /projects/:id/registry/repositories/:rid/tags/:tag"] == 0
    assert counts["GET /projects/:id/repository/tags"] == 1  # the git tags, one page
    assert counts["total"] == 8


def test_requests_per_sweep_with_a_job_token(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """The REST tag list has names only: each orphan's digest is read after the ref lists,
    which are then read again (a digest read after them says nothing about them); the delete
    checks the digest once more. Three requests per orphan and the ref lists twice."""
    project = gitlab_emulator.add_project(REPO, branches=["main", "live"])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main")
    pusher.tag(REPO, "main", "live")
    for n in range(3):
        pusher.tag(REPO, "main", f"gone-{n}")
    env = {
        "CI_API_V4_URL": gitlab_emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": gitlab_emulator.job_token(project, Role.developer),
    }

    result = run_cli("sweep", "--delete", env=env)

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["live", "main"]
    counts = gitlab_emulator.requests
    assert counts["GET /projects/:id/registry/repositories/:rid/tags"] == 1
    assert counts["GET /projects/:id/registry/repositories/:rid/tags/:tag"] == 2 * 3
    assert counts["DELETE /projects/:id/registry/repositories/:rid/tags/:tag"] == 3
    assert counts["GET /projects/:id/repository/branches"] == 2
    assert counts["GET /projects/:id/repository/tags"] == 2
    assert counts["POST /api/graphql"] == 0


def test_transient_failures_are_retried_and_a_lasting_one_fails_only_its_tag(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """Over REST (a job token: GraphQL refuses those), one request per tag."""
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "gone-1", "gone-2", "gone-3"):
        pusher.push(REPO, tag)
    env = {
        "CI_API_V4_URL": gitlab_emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": gitlab_emulator.job_token(project, Role.developer),
    }
    delete_route = "DELETE /projects/:id/registry/repositories/:rid/tags/:tag"
    gitlab_emulator.faults["GET /projects/:id/registry/repositories/:rid/tags"] = [429, 503]
    gitlab_emulator.faults[delete_route] = [502, 500]

    result = run_cli("sweep", "--delete", "--concurrency", "1", "--json", env=env)

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["main"]
    assert gitlab_emulator.count(delete_route) == 5  # 3 deletions + 2 retried answers

    for tag in ("gone-4", "gone-5"):
        pusher.push(REPO, tag)
    # More 503s than python-gitlab's retry budget (5) for one of the two deletions.
    gitlab_emulator.faults[delete_route] = [503] * 6

    failing = run_cli("sweep", "--delete", "--concurrency", "1", "--json", env=env)

    assert failing.returncode == 1
    summary = json.loads(failing.stdout)["summary"]
    assert (summary["deleted"], summary["failed"]) == (1, 1)
    assert len(pusher.registry.tags(REPO)) == 2


def test_every_repository_or_the_ones_named(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    gitlab_emulator.add_repository(project, "worker")
    for repository in (REPO, f"{REPO}/worker"):
        for tag in ("main", "gone"):
            pusher.push(repository, tag)
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    only_worker = run_cli("sweep", "--delete", "--repository", f"{REPO}/worker", env=env)

    assert only_worker.returncode == 0, only_worker.stderr
    assert pusher.registry.tags(f"{REPO}/worker") == ["main"]
    assert pusher.registry.tags(REPO) == ["gone", "main"]

    unknown = run_cli("sweep", "--repository", "group/nope", env=env)
    assert unknown.returncode == 2
    assert "group/app, group/app/worker" in unknown.stderr

    everything = run_cli("sweep", "--delete", env=env)
    assert everything.returncode == 0, everything.stderr
    assert pusher.registry.tags(REPO) == ["main"]


def test_a_terminal_gets_a_progress_bar_and_a_ci_log_gets_lines(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main")
    for n in range(3):
        pusher.tag(REPO, "main", f"gone-{n}")
    env = {
        **registry_environment(),
        **api_env(
            gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer)
        ),
        "CI": "",
        "COLUMNS": "100",
    }
    code, screen = run_in_terminal("sweep", "--delete", env=env)
    assert code == 0, screen
    assert "sweep: deleting" in screen
    assert "100%" in screen
    assert pusher.registry.tags(REPO) == ["main"]

    for n in range(2):
        pusher.tag(REPO, "main", f"again-{n}")
    logged = run_cli(
        "sweep",
        "--delete",
        env={**api_env(gitlab_emulator, project, env["GITLAB_TOKEN"]), "CI": "true"},
    )
    assert logged.returncode == 0, logged.stderr
    assert "sweep: deleting: 0/2" in logged.stderr
    assert "sweep: deleting: 2/2 (deleted 2)" in logged.stderr
    assert "100%" not in logged.stderr
