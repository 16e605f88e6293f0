"""Benchmark 1: sweep throughput against the script a user writes today.

One registry, one run. Each contender gets its own repository seeded with the same tags: T tags
of which O belong to deleted branches. The baseline logs in once and runs ``regctl tag rm`` for
each of the O tags, one after another. Ours is ``registry-cleanup sweep --delete`` (planning
included: it lists tags and branches itself), by default through GitLab's REST tag endpoint
(``--via api``) and, with ``--via registry``, through regctl too. Afterwards every repository
must hold exactly the same tags.

    python -m bench.sweep_throughput --network 25ms --tags 1250 --orphans 1000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.common import (
    NETWORKS,
    Regctl,
    Stack,
    base_env,
    header,
    ratio_line,
    run,
    stack,
    timed,
    tool,
)
from devkit.seeding import seed_tags
from tests.fakes.gitlab_emulator import Project, Role

GOALS = {"25ms": 8.0, "loopback": 1.5}


def tag_sets(tags: int, orphans: int) -> tuple[list[str], list[str]]:
    """(tags of live branches, the default branch's included; orphaned tags)."""
    if not 0 < orphans < tags:
        raise SystemExit("need 0 < --orphans < --tags")
    live = ["main"] + [f"feature-{n:05d}" for n in range(tags - orphans - 1)]
    return live, [f"gone-{n:05d}" for n in range(orphans)]


def baseline(s: Stack, repository: str, orphans: Sequence[str]) -> float:
    regctl = Regctl(s.registry_host, s.registry.username, s.registry.password)
    regctl.plain_http()
    try:

        def script() -> None:
            regctl.login()
            for tag in orphans:
                regctl.tag_rm(repository, tag)

        return timed(script)
    finally:
        regctl.close()


def ours(s: Stack, project: Project, via: str, concurrency: int) -> float:
    env = {
        **base_env(),
        "GITLAB_TOKEN": s.emulator.personal_token(project, Role.maintainer),
        "CI_API_V4_URL": s.api_url,
        "CI_PROJECT_ID": project.path_with_namespace,
    }
    if via == "registry":
        env |= {
            "CI_REGISTRY": s.registry_host,
            "CI_REGISTRY_USER": s.registry.username,
            "CI_REGISTRY_PASSWORD": s.registry.password,
            "REGISTRY_CLEANUP_TLS": "disabled",
        }
    argv = [tool("registry-cleanup"), "sweep", "--delete", "--via", via]
    argv += ["--concurrency", str(concurrency)]
    return timed(lambda: run(argv, env))


def measure(
    network: str,
    tags: int,
    orphans: int,
    concurrency: int,
    vias: Sequence[str],
    registry_concurrency: int = 4,
) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per contender, and the contenders whose repository did not end as expected
    (with the number of tags it still lists)."""
    live, gone = tag_sets(tags, orphans)
    every = live + gone
    seconds: dict[str, float] = {}
    with stack(network) as s:
        repositories = {"script": "bench/script", **{via: f"bench/{via}" for via in vias}}
        projects = {}
        for name, path in repositories.items():
            seed_tags(s.pusher, path, every, images=10)
            if name != "script":
                projects[name] = s.emulator.add_project(path, default_branch="main", branches=live)
                s.emulator.add_repository(projects[name])
        seconds["script"] = baseline(s, repositories["script"], gone)
        for via in vias:
            workers = concurrency if via == "api" else registry_concurrency
            seconds[via] = ours(s, projects[via], via, workers)
        end_states = {name: s.registry.tags(path) for name, path in repositories.items()}
    expected = sorted(live)
    wrong = {name: len(state) for name, state in end_states.items() if state != expected}
    return seconds, wrong


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=NETWORKS, default="loopback")
    parser.add_argument("--tags", type=int, default=5000)
    parser.add_argument("--orphans", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--via", action="append", choices=("api", "registry"))
    # distribution 2.8 has no tag delete, so regctl deletes a placeholder by digest, and the
    # registry's delete-by-digest walks every tag; above ~8 at once that walk races with other
    # deletes and leaves dangling tag entries. GitLab's registry deletes tags directly.
    parser.add_argument("--registry-concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    vias = args.via or ["api"]

    header(f"sweep throughput: {args.tags} tags, {args.orphans} orphaned, network {args.network}")
    seconds, wrong = measure(
        args.network, args.tags, args.orphans, args.concurrency, vias, args.registry_concurrency
    )
    if wrong:
        for name, left in wrong.items():
            print(
                f"end state DIFFERS: {name} still lists {left} tags, not {args.tags - args.orphans}"
            )
    else:
        print("end state: equal in every repository")
    for name, value in seconds.items():
        workers = args.concurrency if name == "api" else args.registry_concurrency
        label = (
            "regctl tag rm loop"
            if name == "script"
            else f"registry-cleanup sweep --via {name} --concurrency {workers}"
        )
        print(f"{label}: {value:.1f} s ({args.orphans / value:.1f} tags/s)")
    goal = GOALS[args.network]
    for via in vias:
        speedup = seconds["script"] / seconds[via]
        name = f"sweep --via {via} vs regctl loop, {args.network}"
        if via in wrong:
            name += " (end state differs: not comparable)"
        print(ratio_line(name, speedup, f">= {goal}x", speedup >= goal and via not in wrong))
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
