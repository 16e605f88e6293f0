"""Benchmark 6: one sweep under GitLab's authenticated API rate limit, on both registries.

``registry-cleanup sweep --delete`` at its defaults (an access token, ``--via api``) against the
emulator with its Rack::Attack throttle switched on (tests/fakes/rate_limits.py) and, as on
GitLab.com, the registry metadata database (``--no-metadata-database``: without), in the two
ways GitLab answers: RateLimit headers on every response (GitLab.com) and on the 429 only (the
default elsewhere). Each run gets a fresh registry with the same tags; a run without the limit
is the baseline. Printed per run: API requests sent (the 429s included), requests per deleted
tag, the 429s the emulator answered, the time, the time the limit cost over the baseline, the
shortest time the limit allows (whole windows the requests need), and whether the end state
is the expected one.

The default limit is GitLab.com's proposed burst limit for the Free plan, 100 requests a minute
for a user (doc/user/gitlab_com/rate_limits.md), with the minute shrunk to 6 s so that a run
takes seconds: the same requests per window, ten times the pace.

    python -m bench.rate_limit --tags 1250 --orphans 1000 --limit 100 --period 6
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import FLAVOURS, flavour_label, header, load_average, ratio_line, run, stack
from bench.common import timed as timed_call
from bench.sweep_throughput import REPOSITORY, sweep_argv, sweep_env, tag_sets
from devkit.local_registry import FlavourName
from tests.fakes.rate_limits import RateLimit
from tests.fakes.seed import seed_pushed_long_ago

MODES = {
    "no limit": None,
    "headers on every response": True,
    "headers on the 429 only": False,
}
# The goal: with an access token, at most 2 API requests per deleted tag, planning
# included; and with the headers on every response, no 429 at all.
REQUESTS_PER_TAG_GOAL = 2.0


@dataclass(frozen=True)
class Run:
    flavour: FlavourName
    mode: str
    seconds: float | None  # None: the sweep failed
    requests: int
    throttled: int
    end_state_ok: bool
    note: str = ""


@dataclass(frozen=True)
class Setting:
    limit: RateLimit
    metadata_database: bool
    concurrency: int | None


def sweep_once(
    flavour: FlavourName, mode: str, live: Sequence[str], gone: Sequence[str], setting: Setting
) -> Run:
    limit = setting.limit
    with stack("loopback", flavour) as s:
        s.emulator.metadata_database = setting.metadata_database
        # Pushed a day ago: with the metadata database created_at is the push time, and
        # --min-age's grace period must have passed.
        seed_pushed_long_ago(s.pusher, REPOSITORY, [*live, *gone])
        project = s.emulator.add_project(REPOSITORY, default_branch="main", branches=list(live))
        s.emulator.add_repository(project)
        headers = MODES[mode]
        if headers is not None:
            s.emulator.rate_limit = RateLimit(
                limit.requests, limit.period_seconds, headers_on_every_response=headers
            )
        argv, env = sweep_argv("api", setting.concurrency), sweep_env(s, project, "api")
        try:
            seconds: float | None = timed_call(lambda: run(argv, env))
            note = ""
        except RuntimeError as error:
            seconds, note = None, " ".join(str(error).split())[-300:]
        left = s.registry.tags(REPOSITORY)
        return Run(
            flavour,
            mode,
            seconds,
            s.emulator.count("total"),
            s.emulator.throttled,
            left == sorted(live),
            note,
        )


def shortest(served: int, limit: RateLimit) -> float:
    """The least time the limit allows for ``served`` requests: every window they need but the
    first and the last in full (the sweep may start at the end of a window, the windows being
    aligned to the clock, and end at the start of one)."""
    return max((served - 1) // limit.requests - 1, 0) * float(limit.period_seconds)


def show(row: Run, orphans: int, baseline: float | None, limit: RateLimit) -> str:
    time = "FAILED" if row.seconds is None else f"{row.seconds:.2f} s"
    per_tag = row.requests / orphans
    cost = ""
    if row.mode != "no limit" and row.seconds is not None and baseline is not None:
        cost = (
            f" | waited {max(row.seconds - baseline, 0.0):.2f} s over the baseline "
            f"(the limit allows {shortest(row.requests - row.throttled, limit):.0f} s at the least)"
        )
    state = "end state equal" if row.end_state_ok else "end state DIFFERS"
    note = f" [{row.note}]" if row.note else ""
    return (
        f"ROW {row.flavour} | {row.mode} | {time} | {row.requests} requests "
        f"({per_tag:.2f} per deleted tag) | {row.throttled} answered 429{cost} | {state}{note}"
    )


def ratio_lines(runs: Sequence[Run], orphans: int) -> list[str]:
    lines = []
    for row in runs:
        if row.mode == "no limit":
            continue
        where = f"{row.mode}, {flavour_label(row.flavour)}"
        if row.mode == "headers on every response":
            lines.append(ratio_line(f"429s, {where}", row.throttled, "0", row.throttled == 0))
        per_tag = row.requests / orphans
        lines.append(
            ratio_line(
                f"API requests per deleted tag, planning and 429s included, {where}",
                per_tag,
                f"<= {REQUESTS_PER_TAG_GOAL}",
                per_tag <= REQUESTS_PER_TAG_GOAL,
            )
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", action="append", choices=FLAVOURS)
    parser.add_argument("--tags", type=int, default=151)
    parser.add_argument("--orphans", type=int, default=120)
    parser.add_argument("--limit", type=int, default=100, help="requests per window and user")
    parser.add_argument("--period", type=int, default=6, help="the window, in seconds")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="pass to the sweep (default: its own)"
    )
    parser.add_argument("--metadata-database", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    flavours: list[FlavourName] = args.flavour or list(FLAVOURS)
    limit = RateLimit(args.limit, args.period)
    setting = Setting(limit, args.metadata_database, args.concurrency)
    database = "with" if args.metadata_database else "without"
    header(
        f"sweep under a rate limit of {args.limit} API requests per {args.period} s: "
        f"{args.tags} tags, {args.orphans} orphaned, loopback, registries {', '.join(flavours)}, "
        f"{database} the registry metadata database"
    )
    live, gone = tag_sets(args.tags, args.orphans)
    runs: list[Run] = []
    for flavour in flavours:
        baseline: float | None = None
        for mode in MODES:
            row = sweep_once(flavour, mode, live, gone, setting)
            if mode == "no limit":
                baseline = row.seconds
            runs.append(row)
            print(show(row, args.orphans, baseline, limit), flush=True)
    print(f"{load_average()} at the end")
    for line in ratio_lines(runs, args.orphans):
        print(line)
    if any(not row.end_state_ok or row.seconds is None for row in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
