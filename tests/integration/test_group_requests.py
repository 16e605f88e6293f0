"""A group sweep's requests grow linearly with its projects, and nothing is asked per project
that one group-level call answers: the repositories come from the group's listing."""

from __future__ import annotations

from collections import Counter

from devkit.images import ImagePusher
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.fakes.seed import seed_pushed_long_ago

GROUP_LEVEL = {"GET /groups/:id", "GET /groups/:id/registry/repositories"}
# Per-project calls a group-level call could replace; none may be made.
REPLACEABLE = {"GET /projects/:id/registry/repositories", "GET /projects/:id"}


def sweep_requests(
    emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, projects: int
) -> Counter[str]:
    group = emulator.add_group(f"size-{projects}")
    for index in range(projects):
        path = f"{group.full_path}/app-{index}"
        project = emulator.add_project(path, branches=["main", "feature/live"])
        emulator.add_repository(project)
        seed_pushed_long_ago(pusher, path, ["main", "feature-live", "gone"])
    token = emulator.group_token(group, Role.maintainer)
    emulator.requests.clear()

    done = run_cli(
        "sweep",
        "--group",
        group.full_path,
        "--json",
        env={"CI_API_V4_URL": emulator.url, "GITLAB_TOKEN": token},
    )

    assert done.returncode == 0, done.stderr
    counted = Counter(emulator.requests)
    del counted["total"]
    return counted


def test_requests_grow_linearly_with_no_replaceable_per_project_call(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
) -> None:
    counts = {n: sweep_requests(gitlab_emulator, pusher, run_cli, n) for n in (5, 10)}

    for n, counted in counts.items():
        assert not REPLACEABLE & set(counted), counted
        # One page of the group's listing covers up to 100 repositories.
        assert {route: counted[route] for route in GROUP_LEVEL} == dict.fromkeys(GROUP_LEVEL, 1)
        for route, value in counted.items():
            if route not in GROUP_LEVEL:
                # Every other call is one project's own: the same number for each project.
                assert value % n == 0, (route, value, n)
    per_project = {
        route: value // 5 for route, value in counts[5].items() if route not in GROUP_LEVEL
    }
    expected_10 = {route: value * 10 for route, value in per_project.items()}
    assert {r: v for r, v in counts[10].items() if r not in GROUP_LEVEL} == expected_10
    # total(N) = 2 + b * N: a line through both points with the group-level intercept.
    slope = sum(per_project.values())
    assert sum(counts[5].values()) == 2 + 5 * slope
    assert sum(counts[10].values()) == 2 + 10 * slope
