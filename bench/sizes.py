"""Benchmark: what ``sweep --sizes`` costs (issue 22), side by side in one run.

1. Time. On one registry and emulator (distribution v3, the 25 ms model by default), T tags of
   which O are orphaned, each tag its own image: the dry run without and with --sizes, then
   --delete without and with it (each on a fresh seed), alternated round by round, medians.
   The goal: with --sizes at most 1.5x the time without.
2. Requests. On loopback, at each --scale (tags), with one image per D tags: the requests the
   sized dry run sends to the registry, against the distinct manifests there are. The goal:
   they grow with the distinct manifests (one read each), not with the tags; the tags are
   listed by GitLab (GraphQL pages carry the digests), so at a thousand tags per image a
   manifest is read once, not a thousand times.

    python -m bench.sizes --network 25ms --tags 151 --orphans 120 --scale 1000 --scale 5000
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bench.common import (
    Stack,
    header,
    median,
    ratio_line,
    run,
    stack,
    timed,
    tool,
)
from bench.sweep_throughput import sweep_env as throughput_env
from bench.sweep_throughput import tag_sets
from devkit.seeding import seed_tags
from tests.fakes.gitlab_emulator import Project
from tests.support.fault_proxy import FaultProxy

REPOSITORY = "bench/app"
TIME_GOAL = 1.5


@contextmanager
def seeded(network: str, tags: int, orphans: int, images: int) -> Iterator[tuple[Stack, Project]]:
    live, gone = tag_sets(tags, orphans)
    with stack(network, "v3") as s:
        seed_tags(s.pusher, REPOSITORY, [*live, *gone], images=images)
        project = s.emulator.add_project(REPOSITORY, default_branch="main", branches=list(live))
        s.emulator.add_repository(project)
        yield s, project


def sweep_env(s: Stack, project: Project, registry_host: str) -> dict[str, str]:
    """Benchmark 1's environment with the registry login, pointed at ``registry_host``."""
    return {**throughput_env(s, project, "registry"), "CI_REGISTRY": registry_host}


def sweep(s: Stack, project: Project, *extra: str) -> dict[str, object]:
    argv = [tool("registry-cleanup"), "sweep", "--json", *extra]
    document: dict[str, object] = json.loads(
        run(argv, sweep_env(s, project, s.registry_host)).stdout
    )
    return document


def time_ratio(network: str, tags: int, orphans: int, rounds: int) -> list[str]:
    """The dry run and --delete, without and with --sizes, alternated; medians."""
    times: dict[str, list[float]] = {name: [] for name in ("dry", "dry+sizes", "del", "del+sizes")}
    with seeded(network, tags, orphans, images=tags) as (s, project):
        sweep(s, project)  # warm: the first run pays for caches on both ends
        for _ in range(rounds):
            times["dry"].append(timed(lambda: sweep(s, project)))
            times["dry+sizes"].append(timed(lambda: sweep(s, project, "--sizes")))
    for _ in range(rounds):
        for name, extra in (("del", ("--delete",)), ("del+sizes", ("--delete", "--sizes"))):
            with seeded(network, tags, orphans, images=tags) as (s, project):
                times[name].append(timed(lambda: sweep(s, project, *extra)))  # noqa: B023
    lines = [
        f"ROW {name} | median {median(values):.2f} s | runs {', '.join(f'{v:.2f}' for v in values)}"
        for name, values in times.items()
    ]
    for plain, sized, what in (("dry", "dry+sizes", "dry run"), ("del", "del+sizes", "--delete")):
        ratio = median(times[sized]) / median(times[plain])
        lines.append(
            ratio_line(
                f"{what} with --sizes / without ({tags} tags, {orphans} orphaned, {network})",
                ratio,
                f"<= {TIME_GOAL}",
                ratio <= TIME_GOAL,
            )
        )
    return lines


def request_scaling(scales: Sequence[int], tags_per_image: int) -> list[str]:
    """Registry requests of a sized dry run against the distinct manifests, at each scale."""
    lines, per_manifest = [], []
    for tags in scales:
        images = max(1, tags // tags_per_image)
        with (
            seeded("loopback", tags, tags // 2, images=images) as (s, project),
            FaultProxy(s.registry.host, lifetime=3600) as proxy,
        ):
            s.emulator.registry_host = proxy.host
            argv = [tool("registry-cleanup"), "sweep", "--json", "--sizes"]
            document = json.loads(run(argv, sweep_env(s, project, proxy.host)).stdout)
            seen = proxy.seen()
        manifests = sum(1 for r in seen if "/manifests/" in r.target)
        blobs = sum(1 for r in seen if "/blobs/" in r.target)
        tokens = len(seen) - manifests - blobs
        listed = len(document["tags"])  # type: ignore[arg-type]
        per_manifest.append(manifests / images)
        lines.append(
            f"ROW {tags} tags ({listed} listed), {images} distinct manifests | "
            f"{manifests} manifest reads, {blobs} blob reads, {tokens} other | "
            f"{manifests / images:.2f} reads per distinct manifest, "
            f"{manifests / tags:.3f} per tag"
        )
    worst = max(per_manifest)
    lines.append(
        ratio_line(
            "manifest reads per distinct manifest, largest scale",
            per_manifest[-1],
            "1.00 at every scale (reads follow the distinct manifests, not the tags)",
            worst <= 1.0,
        )
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="25ms", choices=("loopback", "25ms"))
    parser.add_argument("--tags", type=int, default=151)
    parser.add_argument("--orphans", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, action="append", default=None)
    parser.add_argument("--tags-per-image", type=int, default=10)
    args = parser.parse_args(argv)
    header(f"sweep --sizes: time at {args.tags} tags ({args.network}), requests by scale")
    lines = time_ratio(args.network, args.tags, args.orphans, args.rounds)
    lines += request_scaling(args.scale or [1000, 5000], args.tags_per_image)
    # The rows as measured, then the ratios together at the end.
    for line in sorted(lines, key=lambda line: line.startswith("RATIO ")):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
