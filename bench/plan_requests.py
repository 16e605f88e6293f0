"""Benchmark 2: GitLab API requests needed to plan a sweep with retention by age.

For each N, a repository with N tags (a fifth of them still used by a branch) and a project
with N/5 branches; ``registry-cleanup sweep --dry-run --older-than 7d`` plans and changes
nothing. The emulator counts every request it serves. Side by side: GitLab with its GraphQL API
(tag metadata in pages of 20, GitLab's max_page_size) and without it (REST: one detail request
per orphaned tag).

The bound is N/20 + branch pages + 5. An earlier goal of N/50 assumed GraphQL pages of 100,
which GitLab never serves (ContainerRepositoryDetails.tags: max_page_size 20): no client can
read N tags' metadata in fewer than N/20 requests.

    python -m bench.plan_requests --tags 1000 --tags 10000
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from bench.common import FLAVOURS, base_env, header, ratio_line, run, stack, timed, tool
from devkit.local_registry import FlavourName
from devkit.seeding import seed_tags
from registry_cleanup.gitlab import GRAPHQL_PAGE
from tests.fakes.gitlab_emulator import Role

CONSTANT = 5  # repositories, git tags, protected tag rules, and slack for an extra page
BRANCH_ROUTE = "GET /projects/:id/repository/branches"


def count_requests(tags: int, graphql: bool, flavour: FlavourName) -> tuple[int, int, float]:
    """(requests in all, branch list pages, seconds) for one dry-run sweep over ``tags``."""
    branches = ["main"] + [f"feature-{n:06d}" for n in range(max(tags // 5 - 1, 0))]
    every = branches + [f"gone-{n:06d}" for n in range(tags - len(branches))]
    with stack("loopback", flavour) as s:
        s.emulator.graphql_enabled = graphql
        seed_tags(s.pusher, "bench/app", every, images=10)
        project = s.emulator.add_project("bench/app", default_branch="main", branches=branches)
        s.emulator.add_repository(project)
        env = {
            **base_env(),
            "GITLAB_TOKEN": s.emulator.personal_token(project, Role.maintainer),
            "CI_API_V4_URL": s.api_url,
            "CI_PROJECT_ID": "bench/app",
        }
        argv = [tool("registry-cleanup"), "sweep", "--dry-run", "--older-than", "7d", "--json"]
        seconds = timed(lambda: run(argv, env))
        if s.registry.tags("bench/app") != sorted(every):
            raise SystemExit("a dry run changed the registry")
        return s.emulator.requests["total"], s.emulator.requests[BRANCH_ROUTE], seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, action="append")
    parser.add_argument("--flavour", action="append", choices=FLAVOURS)
    parser.add_argument(
        "--rest-up-to",
        type=int,
        default=1000,
        metavar="N",
        help="also count the REST-only plan for sizes up to N (it reads one tag per request)",
    )
    args = parser.parse_args(argv)
    sizes = args.tags or [1000, 10000]
    flavours: list[FlavourName] = args.flavour or list(FLAVOURS)

    header("API requests to plan a sweep with --older-than 7d")
    ratios = []
    for flavour in flavours:
        for tags in sizes:
            total, branch_pages, seconds = count_requests(tags, True, flavour)
            bound = math.ceil(tags / GRAPHQL_PAGE) + branch_pages + CONSTANT
            line = f"{flavour} N={tags}: {total} requests ({branch_pages} branch pages)"
            print(
                f"{line} in {seconds:.1f} s; bound N/{GRAPHQL_PAGE} + pages + {CONSTANT} = {bound}"
            )
            if tags <= args.rest_up_to:
                rest_total, _, rest_seconds = count_requests(tags, False, flavour)
                rest = f"{rest_total} requests in {rest_seconds:.1f} s"
                print(f"{flavour} N={tags} without GraphQL (REST only): {rest}")
            ratios.append((flavour, tags, total, bound))
    for flavour, tags, total, bound in ratios:
        name = f"requests / bound, {flavour}, N={tags}"
        print(ratio_line(name, total / bound, "<= 1", total <= bound))


if __name__ == "__main__":
    main()
