"""delete --via api, bulk-delete, delete-repository and policy against the emulator."""

from __future__ import annotations

import json

from devkit.images import ImagePusher
from devkit.local_registry import registry_environment
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.fakes.terminal import run_in_terminal

REPO = "group/app"
TAG_ROUTE = "DELETE /projects/:id/registry/repositories/:rid/tags/:tag"
BULK_ROUTE = "DELETE /projects/:id/registry/repositories/:rid/tags"


def setup(emulator: GitLabEmulator, pusher: ImagePusher, *tags: str) -> Project:
    project = emulator.add_project(REPO, branches=["main"])
    emulator.add_repository(project)
    for tag in tags:
        pusher.push(REPO, tag)
    return project


def env_for(emulator: GitLabEmulator, project: Project, **tokens: str) -> dict[str, str]:
    return {
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_REGISTRY_IMAGE": f"{emulator.store.registry.host}/{REPO}",
        "CI_DEFAULT_BRANCH": "main",
        **tokens,
    }


def as_role(emulator: GitLabEmulator, project: Project, role: Role) -> dict[str, str]:
    return env_for(emulator, project, GITLAB_TOKEN=emulator.personal_token(project, role))


def test_delete_via_api_with_a_developer_job_token(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher, "main", "feature-a", "feature-b")
    token = gitlab_emulator.job_token(project, Role.developer)
    env = env_for(gitlab_emulator, project, CI_JOB_TOKEN=token, CI_COMMIT_REF_SLUG="feature-a")

    result = run_cli("delete", "--via", "api", "--json", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "deleted"
    assert pusher.registry.tags(REPO) == ["feature-b", "main"]
    assert token not in result.output

    again = run_cli("delete", "--via", "api", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("absent:")


def test_delete_via_api_keeps_the_same_safety_rules(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher, "main", "latest", "release-1")
    gitlab_emulator.add_tag_rule(project, "release-.*")
    token = gitlab_emulator.job_token(project, Role.developer)
    env = env_for(gitlab_emulator, project, CI_JOB_TOKEN=token)
    host = gitlab_emulator.store.registry.host

    for tag in ("main", "latest"):
        kept = run_cli("delete", "--via", "api", f"{host}/{REPO}:{tag}", env=env)
        assert kept.returncode == 0, kept.stderr
        assert kept.stdout.startswith("skipped:")
    refused = run_cli("delete", "--via", "api", f"{host}/{REPO}:release-1", env=env)

    assert refused.returncode == 1
    assert "permission denied" in refused.stderr
    assert pusher.registry.tags(REPO) == ["latest", "main", "release-1"]
    assert gitlab_emulator.count(TAG_ROUTE) == 1  # only release-1 reached GitLab


def test_bulk_delete_needs_a_maintainer_and_runs_once_an_hour(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher, "main", "latest", "tmp-1", "tmp-2")
    developer = as_role(gitlab_emulator, project, Role.developer)
    maintainer = as_role(gitlab_emulator, project, Role.maintainer)

    forbidden = run_cli("bulk-delete", "--name-regex-delete", ".*", env=developer)

    assert forbidden.returncode == 1
    assert "403 Forbidden" in forbidden.stderr
    assert "needs at least the Maintainer role" in forbidden.stderr
    assert pusher.registry.tags(REPO) == ["latest", "main", "tmp-1", "tmp-2"]

    first = run_cli(
        "bulk-delete", "--name-regex-delete", "tmp-.*", "--name-regex-keep", "tmp-2", env=maintainer
    )

    assert first.returncode == 0, first.stderr
    assert "202" in first.stdout
    assert pusher.registry.tags(REPO) == ["latest", "main", "tmp-2"]

    second = run_cli("bulk-delete", "--name-regex-delete", ".*", env=maintainer)

    assert second.returncode == 1
    assert "at most once an hour" in second.stderr
    assert "one bulk delete per repository per hour" in second.stderr
    assert pusher.registry.tags(REPO) == ["latest", "main", "tmp-2"]


def test_bulk_delete_never_takes_latest(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher, "latest", "a")
    env = as_role(gitlab_emulator, project, Role.maintainer)
    result = run_cli("bulk-delete", "--name-regex-delete", ".*", env=env)
    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["latest"]


def test_delete_repository_asks_unless_yes(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher, "main", "x")
    env = as_role(gitlab_emulator, project, Role.maintainer)

    unconfirmed = run_cli("delete-repository", env=env)

    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    assert pusher.registry.tags(REPO) == ["main", "x"]

    declined, screen = run_in_terminal("delete-repository", env=terminal_env(env), answer="n\n")
    assert declined == 1
    assert "Delete container repository" in screen
    assert "nothing was deleted" in screen
    assert pusher.registry.tags(REPO) == ["main", "x"]

    confirmed = run_cli("delete-repository", "--yes", env=env)

    assert confirmed.returncode == 0, confirmed.stderr
    assert "scheduled: GitLab is deleting" in confirmed.stdout
    # GitLab only schedules the deletion (202); its worker deletes the tags later.
    assert [r.status for r in project.repositories] == ["delete_scheduled"]
    assert gitlab_emulator.run_scheduled_deletions() == 1
    assert pusher.registry.tags(REPO) == []
    assert project.repositories == []


def test_delete_repository_asks_at_a_terminal(gitlab_emulator: GitLabEmulator, pusher: ImagePusher):
    project = setup(gitlab_emulator, pusher, "main")
    env = terminal_env(as_role(gitlab_emulator, project, Role.maintainer))

    code, screen = run_in_terminal("delete-repository", env=env, answer="y\n")

    assert code == 0, screen
    assert "scheduled: GitLab is deleting" in screen
    assert [r.status for r in project.repositories] == ["delete_scheduled"]


def terminal_env(env: dict[str, str]) -> dict[str, str]:
    return {**registry_environment(), **env, "CI": ""}


def test_policy_validation_happens_before_sending(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher)
    env = as_role(gitlab_emulator, project, Role.maintainer)

    for args, message in (
        (["--keep-n", "3"], "--keep-n 3 is not one of 1, 5, 10, 25, 50, 100"),
        (["--cadence", "2d"], "--cadence '2d' is not one of"),
        (["--older-than", "1d"], "--older-than '1d' is not one of 7d, 14d, 30d, 90d"),
        (["--name-regex", "(?=x)"], "RE2"),
        ([], "nothing to change"),
    ):
        bad = run_cli("policy", "set", *args, env=env)
        assert bad.returncode == 2, (args, bad.output)
        assert message in bad.stderr, (args, bad.stderr)
    assert gitlab_emulator.count("PUT /projects/:id") == 0

    changed = run_cli(
        "policy",
        "set",
        "--enabled",
        "--cadence",
        "7d",
        "--keep-n",
        "5",
        "--name-regex",
        "review-.*",
        env=env,
    )
    assert changed.returncode == 0, changed.stderr
    # Grouped, so that GitLab's \A#{name_regex}\z means the whole tag; the command says so.
    assert "sent: name_regex=(?:review-.*)" in changed.stderr
    shown = run_cli("policy", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    policy = json.loads(shown.stdout)
    assert (policy["enabled"], policy["cadence"], policy["keep_n"]) == (True, "7d", 5)
    assert policy["name_regex"] == "(?:review-.*)"


def test_policy_set_as_developer_names_the_role(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = setup(gitlab_emulator, pusher)
    env = as_role(gitlab_emulator, project, Role.developer)
    result = run_cli("policy", "set", "--cadence", "7d", env=env)
    assert result.returncode == 1
    assert "needs at least the Maintainer role" in result.stderr


def test_missing_token_and_url_are_input_errors(run_cli: RunCli):
    no_url = run_cli("sweep", env={"CI_PROJECT_ID": "1", "GITLAB_TOKEN": "x"})
    assert no_url.returncode == 2
    assert "CI_API_V4_URL" in no_url.stderr
    no_token = run_cli(
        "sweep", env={"CI_API_V4_URL": "http://127.0.0.1:9/api/v4", "CI_PROJECT_ID": "1"}
    )
    assert no_token.returncode == 2
    assert "GITLAB_TOKEN" in no_token.stderr
    bad_url = run_cli(
        "sweep",
        env={"CI_API_V4_URL": "http://127.0.0.1:9", "CI_PROJECT_ID": "1", "GITLAB_TOKEN": "x"},
    )
    assert bad_url.returncode == 2
    assert "/api/v4" in bad_url.stderr


def test_bulk_delete_alternatives_mean_whole_tags_on_gitlab(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """GitLab builds \\A#{regex}\\z: sent bare, 'review-.*|feature-.*' would also take
    'old-feature-3' (it ends with feature-3). Grouped, it means what it says."""
    project = setup(gitlab_emulator, pusher, "main", "review-1", "feature-2", "old-feature-3")
    env = as_role(gitlab_emulator, project, Role.maintainer)

    result = run_cli(
        "bulk-delete",
        "--name-regex-delete",
        "review-.*|feature-.*",
        "--name-regex-keep",
        "main|x",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["main", "old-feature-3"]
    assert (
        "sent: name_regex_delete=(?:review-.*|feature-.*) name_regex_keep=(?:main|x)"
        in result.stdout
    )
