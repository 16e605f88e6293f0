"""registry-cleanup sweep --group, end to end: the CLI, python-gitlab, the emulator's groups API,
the real registry. Every readable project loses exactly its orphans; a project that cannot be
read, or whose guard refuses, loses nothing and fails the run by name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from devkit.images import ImagePusher
from devkit.local_registry import registry_environment
from tests.conftest import RunCli
from tests.fakes.fixtures import TokenAuth
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.fakes.seed import seed_pushed_long_ago
from tests.fakes.terminal import run_in_terminal

GROUP_ROUTES = ("GET /groups/:id", "GET /groups/:id/registry/repositories")


@dataclass(frozen=True)
class Estate:
    token: str
    env: dict[str, str]
    before: dict[str, list[str]]


# repository path -> (tags, of which these are orphans)
LAYOUT = {
    "acme/app": (["main", "feature-live", "gone-app", "v1.0.0", "latest"], ["gone-app"]),
    "acme/platform/api": (["main", "gone-api"], ["gone-api"]),
    "acme/platform/api/worker": (["main", "gone-worker"], ["gone-worker"]),
    "acme/locked": (["main", "gone-locked"], []),
    "acme/empty": (["gone-empty-1", "gone-empty-2"], []),
    "other/app": (["main", "gone-other"], []),
}


def build(emulator: GitLabEmulator, pusher: ImagePusher) -> Estate:
    """A group with a subgroup, a project whose code cannot be read (repository disabled), one
    whose branch list is empty (the guard refuses), and a project outside the group."""
    acme = emulator.add_group("acme")
    emulator.add_group("acme/platform")
    app = emulator.add_project("acme/app", branches=["main", "feature/live"])
    emulator.add_repository(app)
    api = emulator.add_project("acme/platform/api", branches=["main"])
    emulator.add_repository(api)
    emulator.add_repository(api, "worker")
    locked = emulator.add_project("acme/locked", branches=["main"])
    locked.repository_enabled = False
    emulator.add_repository(locked)
    empty = emulator.add_project("acme/empty", branches=[])
    emulator.add_repository(empty)
    other = emulator.add_project("other/app", branches=["main"])
    emulator.add_repository(other)
    for repository, (tags, _) in LAYOUT.items():
        seed_pushed_long_ago(pusher, repository, tags)
    token = emulator.group_token(acme, Role.maintainer)
    env = {"CI_API_V4_URL": emulator.url, "GITLAB_TOKEN": token}
    before = {repository: pusher.registry.tags(repository) for repository in LAYOUT}
    return Estate(token, env, before)


def test_group_sweep_deletes_the_orphans_of_every_readable_project_and_nothing_else(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tmp_path: Path
) -> None:
    estate = build(gitlab_emulator, pusher)

    dry = run_cli("sweep", "--group", "acme", "--json", env=estate.env)

    assert dry.returncode == 1, dry.stderr
    assert {r: pusher.registry.tags(r) for r in LAYOUT} == estate.before
    document = json.loads(dry.stdout)
    assert document["group"] == "acme"
    assert document["dry_run"] is True
    sections = {s["project"]: s for s in document["projects"]}
    assert sorted(sections) == ["acme/app", "acme/empty", "acme/locked", "acme/platform/api"]
    planned = sorted(
        t["tag"] for s in document["projects"] for t in s["tags"] if t["status"] == "would-delete"
    )
    assert planned == ["gone-api", "gone-app", "gone-empty-1", "gone-empty-2", "gone-worker"]
    # A dry run deletes nothing, so the guard only warns; the unreadable project fails.
    assert document["failed_projects"] == ["acme/locked"]
    assert "could not list branches: 403 Forbidden" in sections["acme/locked"]["error"]
    assert document["summary"]["would-delete"] == 5
    assert document["projects_total"] == 4

    report = tmp_path / "group.json"
    done = run_cli("sweep", "--group", "acme", "--delete", "--report", str(report), env=estate.env)

    assert done.returncode == 1, done.stderr
    after = {r: pusher.registry.tags(r) for r in LAYOUT}
    for repository, (tags, orphans) in LAYOUT.items():
        assert after[repository] == sorted(set(tags) - set(orphans)), repository
    written = json.loads(report.read_text())
    assert written["failed_projects"] == ["acme/empty", "acme/locked"]
    assert written["summary"]["deleted"] == 3
    sections = {s["project"]: s for s in written["projects"]}
    assert sections["acme/empty"]["error"].startswith("the guard refused to delete")
    assert {t["status"] for t in sections["acme/empty"]["tags"]} == {"skipped"}
    # The failing projects are named on stderr, one line each.
    assert "failed: project acme/locked: could not list branches: 403 Forbidden" in done.stderr
    assert "failed: project acme/empty: the guard refused to delete" in done.stderr
    # The table groups by project.
    table = run_cli("sweep", "--group", "acme", env=estate.env).stdout
    assert table.index("project acme/app") < table.index("project acme/platform/api")
    assert "project acme/locked: FAILED" in table
    for text in (dry.stdout, dry.stderr, done.stdout, done.stderr, report.read_text()):
        assert estate.token not in text
    # No per-project repository listing: the group's listing named every repository.
    assert gitlab_emulator.count("GET /projects/:id/registry/repositories") == 0


def test_subgroups_and_project_patterns_pick_the_projects(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    estate = build(gitlab_emulator, pusher)

    direct = run_cli("sweep", "--group", "acme", "--no-subgroups", "--json", env=estate.env)
    picked = run_cli(
        "sweep",
        "--group",
        str(next(g.id for g in gitlab_emulator.groups.values() if g.full_path == "acme")),
        "--include-project",
        "acme/.*",
        "--exclude-project",
        "acme/(locked|empty)",
        "--delete",
        "--json",
        env=estate.env,
    )

    projects = [s["project"] for s in json.loads(direct.stdout)["projects"]]
    assert projects == ["acme/app", "acme/empty", "acme/locked"]
    assert picked.returncode == 0, picked.stderr
    document = json.loads(picked.stdout)
    assert [s["project"] for s in document["projects"]] == ["acme/app", "acme/platform/api"]
    assert document["failed_projects"] == []
    assert pusher.registry.tags("acme/locked") == estate.before["acme/locked"]
    assert "gone-app" not in pusher.registry.tags("acme/app")


def test_a_job_token_or_a_mixed_scope_is_refused_before_any_request(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    estate = build(gitlab_emulator, pusher)
    app = next(p for p in gitlab_emulator.projects.values() if p.path_with_namespace == "acme/app")
    job_env = {"CI_API_V4_URL": gitlab_emulator.url, "CI_JOB_TOKEN": "x" * 20}
    job_env["CI_JOB_TOKEN"] = gitlab_emulator.job_token(app, Role.maintainer)

    with_job_token = run_cli("sweep", "--group", "acme", "--delete", env=job_env)
    mixed = run_cli("sweep", "--group", "acme", "--project", "acme/app", env=estate.env)
    bad_pattern = run_cli("sweep", "--group", "acme", "--include-project", "(", env=estate.env)
    no_group = run_cli("sweep", "--group", "nobody", env=estate.env)
    without_group = run_cli(
        "sweep", "--project", "acme/app", "--include-project", "x", env=estate.env
    )
    # A child job: --project on the command line beats a group from the environment.
    one_project = run_cli(
        "sweep",
        "--project",
        "acme/app",
        "--json",
        env={**estate.env, "REGISTRY_CLEANUP_GROUP": "acme"},
    )

    assert with_job_token.returncode == 2
    assert "a CI job token cannot list a group's projects" in with_job_token.stderr
    assert len(with_job_token.stderr.strip().splitlines()) == 1
    assert mixed.returncode == 2
    assert "--project and --group" in mixed.stderr
    assert bad_pattern.returncode == 2
    assert "--include-project '('" in bad_pattern.stderr
    assert no_group.returncode == 1
    assert "404 Group Not Found" in no_group.stderr
    assert without_group.returncode == 2
    assert "--include-project picks projects of a group; it needs --group" in without_group.stderr
    assert one_project.returncode == 0, one_project.stderr
    assert "would-delete" in one_project.stdout
    assert sum(gitlab_emulator.count(route) for route in GROUP_ROUTES) == 1  # only `nobody`
    assert {r: pusher.registry.tags(r) for r in LAYOUT} == estate.before


def test_ci_default_branch_of_the_pipeline_is_no_default_for_other_projects(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    """In the group's child pipeline CI_DEFAULT_BRANCH is the housekeeping project's; a swept
    project whose default branch is `master` must not see its guard refuse because of it."""
    project = gitlab_emulator.add_project("acme/old", default_branch="master", branches=["master"])
    gitlab_emulator.add_repository(project)
    seed_pushed_long_ago(pusher, "acme/old", ["master", "gone-old"])
    token = gitlab_emulator.personal_token(project, Role.maintainer)
    env = {
        "CI_API_V4_URL": gitlab_emulator.url,
        "GITLAB_TOKEN": token,
        "CI_PROJECT_ID": "999",
        "CI_DEFAULT_BRANCH": "main",
    }

    done = run_cli("sweep", "--project", "acme/old", "--delete", "--json", env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["default_branch"] == "master"
    assert pusher.registry.tags("acme/old") == ["master"]


def test_one_progress_bar_covers_the_whole_run(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    estate = build(gitlab_emulator, pusher)
    selection = ("--exclude-project", "acme/(locked|empty)")
    env = {**registry_environment(), **estate.env, "CI": "", "COLUMNS": "100"}

    code, screen = run_in_terminal("sweep", "--group", "acme", *selection, "--delete", env=env)

    assert code == 0, screen
    assert "sweep of group acme" in screen
    assert "100%" in screen
    # The projects' own deletion bars are not drawn: one bar, counting projects.
    assert "sweep: deleting" not in screen
    logged = run_cli("sweep", "--group", "acme", *selection, env={**estate.env, "CI": "true"})
    assert logged.returncode == 0, logged.stderr
    assert "sweep of group acme: 0/2" in logged.stderr
    assert "sweep of group acme: 2/2 (done 2)" in logged.stderr


def test_via_registry_one_login_serves_every_project(
    token_auth: TokenAuth, run_cli: RunCli
) -> None:
    """--via registry: every project's orphans go through regctl, none through the API."""
    emulator = token_auth.emulator
    acme = emulator.add_group("acme")
    for path in ("acme/one", "acme/sub/two"):
        project = emulator.add_project(path, branches=["main"])
        emulator.add_repository(project)
        for tag in ("main", "gone"):
            token_auth.pusher.push(path, tag)
    token = emulator.group_token(acme, Role.maintainer)
    env = {
        "CI_API_V4_URL": emulator.url,
        "GITLAB_TOKEN": token,
        "CI_REGISTRY": token_auth.registry.host,
        "CI_REGISTRY_USER": "group-bot",
        "CI_REGISTRY_PASSWORD": token,
        "REGISTRY_CLEANUP_TLS": "disabled",
    }
    args = ("--group", "acme", "--delete", "--via", "registry", "--concurrency", "1", "--json")

    done = run_cli("sweep", *args, "--min-age", "0s", env=env)

    assert done.returncode == 0, done.output
    for path in ("acme/one", "acme/sub/two"):
        assert token_auth.registry.tags(path) == ["main"], done.output
    assert emulator.count("DELETE /projects/:id/registry/repositories/:rid/tags/:tag") == 0
    assert token not in done.output
