"""Benchmark 5: where one sweep's time goes, request by request.

One ``registry-cleanup sweep --delete`` at its defaults (``--via api``, an access token, so
GraphQL plans), on a fresh registry behind the 25 ms-each-way model. The latency proxy in front
of the API records when each request started and ended (bench.common.TimedProxy); the command's
launch and exit are timed around it. Printed: time before the first request (Python start,
imports, configuration), planning (up to the first delete) and deleting, requests per phase and
route, the concurrency actually reached while deleting, the gaps with nothing in flight, and the
tags whose details were read more than once. The raw timeline goes to ``--timeline FILE``
(JSON lines, seconds since launch).

    python -m bench.sweep_timeline --flavour v3 --tags 151 --orphans 120 --timeline timeline.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    FLAVOURS,
    NETWORKS,
    Timed,
    header,
    load_average,
    median,
    run,
    stack,
    timed,
    tool,
)
from bench.sweep_throughput import REPOSITORY, sweep_argv, sweep_env, tag_sets
from devkit.seeding import seed_tags

# Route names as in GitLab's lib/api (and tests/fakes), matched on the path after /api/v4.
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("DELETE", r"^/projects/[^/]+/registry/repositories/[^/]+/tags/[^/]+$", "delete tag"),
        ("GET", r"^/projects/[^/]+/registry/repositories/[^/]+/tags/[^/]+$", "tag details"),
        ("GET", r"^/projects/[^/]+/registry/repositories/[^/]+/tags$", "tag list page"),
        ("GET", r"^/projects/[^/]+/registry/repositories$", "repository list"),
        ("POST", r"^/graphql$", "GraphQL"),
        ("GET", r"^/projects/[^/]+/repository/branches$", "branch page"),
        ("GET", r"^/projects/[^/]+/repository/tags$", "git tag page"),
        ("GET", r"^/projects/[^/]+/registry/protection/tag/rules$", "protected tag rules"),
        ("GET", r"^/projects/[^/]+$", "project"),
    )
)
# The imports worth watching at start-up (cumulative, as python -X importtime counts them).
WATCHED_IMPORTS = (
    "registry_cleanup.engine.sweep",
    "gitlab",
    "requests",
    "registry_cleanup.cli.app",
    "typer",
    "rich.progress",
)
# The deletions' own requests: per tag over REST; per page of 20 through GraphQL (the page read
# again for the digest check, then the mutation).
PER_TAG_ROUTES = frozenset(
    {"tag details", "delete tag", "GraphQL tag page read again", "GraphQL delete tags"}
)

GAP_SECONDS = 0.005  # shorter pauses between requests are the client's own bookkeeping


@dataclass(frozen=True)
class Event:
    start: float  # seconds since the command was launched
    end: float
    route: str
    method: str
    target: str
    status: int | None


def route_of(method: str, target: str) -> str:
    path = target.split("?", 1)[0]
    path = path.removeprefix("/api/v4").removeprefix("/api")
    for wanted, pattern, name in ROUTES:
        if method == wanted and pattern.search(path):
            return name
    return f"{method} {path}"


def events_from(timeline: Sequence[Timed], launched: float) -> list[Event]:
    return sorted(
        (
            Event(
                t.start - launched,
                t.end - launched,
                t.operation or route_of(t.method, t.target),
                t.method,
                t.target,
                t.status,
            )
            for t in timeline
        ),
        key=lambda e: e.start,
    )


def busy_intervals(events: Sequence[Event]) -> list[tuple[float, float]]:
    """The union of the requests' [start, end]: when at least one was in flight."""
    merged: list[tuple[float, float]] = []
    for event in sorted(events, key=lambda e: e.start):
        if merged and event.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], event.end))
        else:
            merged.append((event.start, event.end))
    return merged


def in_flight(events: Sequence[Event], start: float, end: float) -> tuple[float, int]:
    """(mean requests in flight over [start, end], the most at once)."""
    if end <= start:
        return 0.0, 0
    covered = sum(max(0.0, min(e.end, end) - max(e.start, start)) for e in events)
    edges = sorted([(e.start, 1) for e in events] + [(e.end, -1) for e in events])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return covered / (end - start), most


def detail_reads(events: Sequence[Event]) -> Counter[str]:
    """Tag name -> times its details were read (REST GET tag, or a GraphQL page naming it)."""
    return Counter(
        e.target.split("?", 1)[0].rsplit("/", 1)[1] for e in events if e.route == "tag details"
    )


def summary(events: Sequence[Event], exited: float, deleted_tags: int = 0) -> list[str]:
    lines: list[str] = []
    if not events:
        return [f"no requests; the command took {exited:.2f} s"]
    first, last_end = events[0].start, max(e.end for e in events)
    # Planning ends with the last listing request (everything but the per-tag routes): after
    # it, only the per-tag work of the deletions remains.
    listing = [e for e in events if e.route not in PER_TAG_ROUTES]
    plan_end = max((e.end for e in listing), default=first)
    planning = [e for e in events if e.start < plan_end]
    deleting = [e for e in events if e.start >= plan_end]
    lines.append(f"command: {exited:.2f} s from launch to exit, {len(events)} API requests")
    lines.append(f"  start-up before the first request (Python, imports, config): {first:.2f} s")
    mean, most = in_flight(planning, first, plan_end)
    lines.append(
        f"  planning, first request to the last listing answer: {plan_end - first:.2f} s, "
        f"{len(planning)} requests, in flight mean {mean:.2f}, at most {most}: "
        f"{dict(Counter(e.route for e in planning))}"
    )
    if deleting:
        delete_end = max(e.end for e in deleting)
        mean, most = in_flight(deleting, plan_end, delete_end)
        lines.append(
            f"  deleting, last listing answer to last answer: {delete_end - plan_end:.2f} s, "
            f"{len(deleting)} requests, in flight mean {mean:.2f}, at most {most}: "
            f"{dict(Counter(e.route for e in deleting))}"
        )
        for route in sorted({e.route for e in deleting}):
            durations = [e.end - e.start for e in deleting if e.route == route]
            lines.append(f"    one {route} request: median {median(durations) * 1000:.0f} ms")
    lines.append(f"  after the last answer until exit: {exited - last_end:.2f} s")
    busy = busy_intervals(events)
    gaps = [
        (a_end, b_start)
        for (_, a_end), (b_start, _) in itertools.pairwise(busy)
        if b_start - a_end > GAP_SECONDS
    ]
    idle = sum(b - a for a, b in gaps)
    lines.append(
        f"  nothing in flight between first request and last answer: {idle:.2f} s in "
        f"{len(gaps)} gaps over {GAP_SECONDS * 1000:.0f} ms"
    )
    for a, b in sorted(gaps, key=lambda g: g[0] - g[1])[:5]:
        before = max((e for e in events if e.end <= a + 1e-9), key=lambda e: e.end)
        after = min((e for e in events if e.start >= b - 1e-9), key=lambda e: e.start)
        lines.append(
            f"    {(b - a) * 1000:.0f} ms at {a:.2f} s, after {before.route} before {after.route}"
        )
    reads = detail_reads(events)
    twice = sum(1 for count in reads.values() if count > 1)
    graphql_pages = sum(1 for e in planning if e.route == "GraphQL tag page")
    lines.append(
        f"  tag details read over REST: {sum(reads.values())} for {len(reads)} tags, "
        f"{twice} of them more than once; the plan had read every tag's digest already "
        f"from {graphql_pages} GraphQL pages"
        if graphql_pages
        else f"  tag details read over REST: {sum(reads.values())} for {len(reads)} tags, "
        f"{twice} of them more than once (no GraphQL)"
    )
    if deleted_tags:
        lines.append(f"  API requests per deleted tag: {len(events) / deleted_tags:.2f}")
    statuses = Counter(e.status for e in events)
    lines.append(f"  statuses: {dict(statuses)}")
    return lines


def startup_costs(env: dict[str, str]) -> list[str]:
    """Python start and the imports a sweep pays for, each timed alone (median of 3)."""
    python = sys.executable
    help_seconds = median(
        [timed(lambda: run([tool("registry-cleanup"), "--help"], env)) for _ in range(3)]
    )
    bare = median([timed(lambda: run([python, "-c", "pass"], env)) for _ in range(3)])
    imports = (
        "import registry_cleanup.cli.app, registry_cleanup.engine.sweep, registry_cleanup.gitlab"
    )
    with_sweep = median([timed(lambda: run([python, "-c", imports], env)) for _ in range(3)])
    importtime = subprocess.run(
        [python, "-X", "importtime", "-c", imports],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stderr
    cumulative: dict[str, int] = {}
    for line in importtime.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative.setdefault(parts[2].strip(), int(parts[1]))
    biggest = ", ".join(
        f"{name} {cumulative[name] / 1000:.0f} ms" for name in WATCHED_IMPORTS if name in cumulative
    )
    return [
        f"python start alone: {bare * 1000:.0f} ms; "
        f"`registry-cleanup --help`: {help_seconds * 1000:.0f} ms",
        f"python + sweep imports (cli, sweep, gitlab): {with_sweep * 1000:.0f} ms, "
        f"of which (cumulative) {biggest}",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", choices=FLAVOURS, default="v3")
    parser.add_argument("--network", choices=NETWORKS, default="25ms")
    parser.add_argument("--tags", type=int, default=151)
    parser.add_argument("--orphans", type=int, default=120)
    parser.add_argument("--timeline", type=Path, default=Path("sweep-timeline.jsonl"))
    args = parser.parse_args(argv)
    if args.network != "25ms":
        raise SystemExit("the timeline is recorded by the latency proxy: use --network 25ms")

    header(
        f"sweep timeline: {args.tags} tags, {args.orphans} orphaned, {args.flavour}, "
        f"network {args.network}, defaults, access token, --via api"
    )
    live, gone = tag_sets(args.tags, args.orphans)
    with stack(args.network, args.flavour) as s:
        seed_tags(s.pusher, REPOSITORY, [*live, *gone], images=10)
        project = s.emulator.add_project(REPOSITORY, default_branch="main", branches=list(live))
        s.emulator.add_repository(project)
        if s.api_proxy is None or s.registry_proxy is None:
            raise SystemExit("no latency proxy: the timeline needs --network 25ms")
        env = sweep_env(s, project, "api")
        argv_sweep = sweep_argv("api", None)
        s.api_proxy.timeline.clear()
        s.registry_proxy.timeline.clear()
        launched = time.time()
        run(argv_sweep, env)
        exited = time.time() - launched
        events = events_from(list(s.api_proxy.timeline), launched)
        # --via api: the client never talks to the registry itself (GitLab's API does).
        registry_requests = len(s.registry_proxy.timeline)
        left = s.registry.tags(REPOSITORY)
        startup = startup_costs(env)
    if left != sorted(live):
        raise SystemExit(f"end state DIFFERS: {len(left)} tags left, not {len(live)}")
    print("end state: equal (exactly the live tags)")
    with args.timeline.open("w") as out:
        for event in events:
            out.write(json.dumps(event.__dict__) + "\n")
    print(f"timeline: {len(events)} requests written to {args.timeline}")
    print(f"requests from the client straight to the registry: {registry_requests}")
    for line in [*summary(events, exited, deleted_tags=len(gone)), *startup]:
        print(line)
    print(f"{load_average()} at the end")


if __name__ == "__main__":
    main()
