"""`registry-cleanup sweep --delete` against the emulator with GitLab's API rate limit on.

The limit is tight (8 requests per second, tests/fakes/rate_limits.py) and the sweep of 200
orphans needs several times that (GraphQL pages of 20 tags, each read again and deleted with one
mutation: about 40 requests), so it cannot finish inside one window. It runs 4 requests at a
time: below the limit, as on GitLab.com (2,000 a minute against at most 32). With RateLimit
headers on every response (GitLab.com) it must slow down in time and never see a 429; with
them on the 429 only (self-managed's default) it must wait each 429 out and say so; and no
number of 429s in a row may fail the run.
"""

from __future__ import annotations

import json

from devkit.images import ImagePusher
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, RateLimit, Role
from tests.fakes.seed import seed_pushed_long_ago

REPO = "group/app"
LIVE = ["main", *(f"feature-{n}" for n in range(24))]
ORPHANS = [f"gone-{n:03d}" for n in range(200)]
TIGHT = 8
PERIOD = 1
BRANCHES = "GET /projects/:id/repository/branches"
SWEEP = ("sweep", "--delete", "--concurrency", "4", "--json")


def seeded(emulator: GitLabEmulator, pusher: ImagePusher) -> tuple[Project, dict[str, str]]:
    # GitLab.com's registry, with the metadata database: GraphQL pages by keyset, so a sweep
    # deletes a page of 20 in two requests (and pushed_at is the tags' created_at).
    emulator.metadata_database = True
    seed_pushed_long_ago(pusher, REPO, [*LIVE, *ORPHANS])
    project = emulator.add_project(REPO, default_branch="main", branches=LIVE)
    emulator.add_repository(project)
    token = emulator.personal_token(project, Role.developer)
    env = {"CI_API_V4_URL": emulator.url, "CI_PROJECT_ID": str(project.id), "GITLAB_TOKEN": token}
    return project, env


def assert_swept(result_stdout: str, pusher: ImagePusher) -> None:
    assert pusher.registry.tags(REPO) == sorted(LIVE)
    summary = json.loads(result_stdout)["summary"]
    assert (summary["deleted"], summary["failed"]) == (len(ORPHANS), 0)


def test_with_headers_on_every_response_the_sweep_slows_down_and_gets_no_429(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    _, env = seeded(gitlab_emulator, pusher)
    gitlab_emulator.rate_limit = RateLimit(TIGHT, PERIOD, headers_on_every_response=True)

    result = run_cli(*SWEEP, env=env)

    assert result.returncode == 0, result.stderr
    assert_swept(result.stdout, pusher)
    # More than two windows' worth was sent, and GitLab never had to refuse one.
    assert gitlab_emulator.count("total") > 2 * TIGHT
    assert gitlab_emulator.throttled == 0
    assert "GitLab rate limit nearly reached (RateLimit-Name throttle_authenticated_api)" in (
        result.stderr
    )
    assert env["GITLAB_TOKEN"] not in result.stdout + result.stderr


def test_with_headers_on_the_429_only_every_429_is_waited_out_and_said(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    _, env = seeded(gitlab_emulator, pusher)
    gitlab_emulator.rate_limit = RateLimit(TIGHT, PERIOD, headers_on_every_response=False)

    result = run_cli(*SWEEP, env=env)

    assert result.returncode == 0, result.stderr
    assert_swept(result.stdout, pusher)
    assert gitlab_emulator.throttled >= 1
    lines = [line for line in result.stderr.splitlines() if "rate limit" in line]
    assert lines, result.stderr
    assert any(
        line.startswith(
            "GitLab rate limit reached (RateLimit-Name throttle_authenticated_api): waiting "
        )
        and line.endswith(", as Retry-After says")
        for line in lines
    ), lines
    # One line per wait, not one per request that waited: no more lines than windows.
    windows = gitlab_emulator.count("total") // TIGHT + 1
    assert len(lines) <= windows, lines
    assert env["GITLAB_TOKEN"] not in result.stdout + result.stderr


def test_no_number_of_429s_in_a_row_fails_the_run(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "gone-1", "gone-2"):
        pusher.push(REPO, tag)
    token = gitlab_emulator.personal_token(project, Role.developer)
    env = {"CI_API_V4_URL": gitlab_emulator.url, "CI_PROJECT_ID": str(project.id)}
    # More 429s in a row than python-gitlab's retry budget (5), each saying Retry-After: 0,
    # on the branch list, which the sweep cannot plan without.
    gitlab_emulator.faults[BRANCHES] = [429] * 12

    result = run_cli(*SWEEP, env={**env, "GITLAB_TOKEN": token})

    assert result.returncode == 0, result.stderr
    assert pusher.registry.tags(REPO) == ["main"]
    assert gitlab_emulator.count(BRANCHES) == 12 + 1
    assert "GitLab rate limit reached: waiting 0.0 s, as Retry-After says" in result.stderr
