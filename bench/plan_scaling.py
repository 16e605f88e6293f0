"""Benchmark 3: planning time and peak memory as the tag count grows (pure plan.py).

Generated data: B branches with realistic names, N tags of which a tenth are the slugs of live
branches, release versions, ``latest``, and the rest orphaned, each with a creation time and a
digest; rules as a scheduled sweep uses them (protected releases, --keep-n 10, --older-than 7d,
--min-age 5m). Each size runs in its own Python process, so its peak resident memory
(getrusage ru_maxrss, interpreter and generated input included) is its own. The time is the
planning only: ``orphans`` and ``plan``, as the sweep calls them.

    python -m bench.plan_scaling --tags 10000 --tags 100000 --branches 20000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.common import header, ratio_line
from registry_cleanup.domain.plan import SweepRules, TagInfo, orphans, plan
from registry_cleanup.domain.refs import slugify
from registry_cleanup.domain.safety import ProtectionRules

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MEMORY_GOAL_MB = 250.0


def generate(tags: int, branches: int, seed: int = 7) -> tuple[list[TagInfo], list[str]]:
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not a secret)
    words = ["login", "fix", "api", "cache", "docs", "ui", "db", "perf", "ci", "auth"]
    branch_names = ["main"] + [
        f"{rng.choice(['feature', 'fix', 'chore'])}/JIRA-{n}-{rng.choice(words)}"
        for n in range(branches - 1)
    ]
    live = [slugify(name) for name in branch_names]
    infos = []
    for n in range(tags):
        if n % 10 == 0:
            name = live[n // 10 % len(live)]
        elif n % 97 == 0:
            name = f"v1.{n // 97}.0"
        else:
            name = f"feature-jira-{n}-{words[n % len(words)]}"
        created = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        infos.append(TagInfo(name, created_at=created, digest=f"sha256:{n:064x}"))
    infos.append(TagInfo("latest", created_at=NOW, digest="sha256:" + "f" * 64))
    return infos, branch_names


def child(tags: int, branches: int) -> None:
    infos, branch_names = generate(tags, branches)
    rules = SweepRules(
        protection=ProtectionRules.build(default_branch_tag="main", protect_semver=True),
        keep_n=10,
        older_than=timedelta(days=7),
        min_age=timedelta(minutes=5),
    )
    start = time.perf_counter()
    candidates = orphans((t.name for t in infos), branch_names, rules)
    decisions = plan(infos, branch_names, rules, NOW)
    seconds = time.perf_counter() - start
    deleted = sum(1 for d in decisions if d.action.value == "delete")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "tags": tags,
                "decisions": len(decisions),
                "orphans": len(candidates),
                "deleted": deleted,
                "seconds": seconds,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def measure(tags: int, branches: int) -> dict[str, float]:
    argv = [sys.executable, "-m", "bench.plan_scaling", "--child", str(tags), str(branches)]
    completed = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(completed.stdout)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, action="append")
    parser.add_argument("--branches", type=int, default=20000)
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    sizes = sorted(args.tags or [10000, 100000])

    header(f"planning scale: {args.branches} branches")
    results = [measure(tags, args.branches) for tags in sizes]
    for r in results:
        per_tag = r["seconds"] / r["tags"] * 1e6
        print(
            f"N={r['tags']:.0f}: {r['seconds']:.2f} s ({per_tag:.1f} us/tag), "
            f"{r['deleted']:.0f} of {r['decisions']:.0f} to delete, peak {r['peak_mb']:.0f} MB"
        )
    smallest, largest = results[0], results[-1]
    growth = (largest["seconds"] / largest["tags"]) / (smallest["seconds"] / smallest["tags"])
    name = f"time per tag N={largest['tags']:.0f} / N={smallest['tags']:.0f}"
    print(ratio_line(name, growth, "<= 1.5", growth <= 1.5))
    peak = max(r["peak_mb"] for r in results)
    print(ratio_line("peak MB / 250 MB", peak / MEMORY_GOAL_MB, "<= 1", peak < MEMORY_GOAL_MB))


if __name__ == "__main__":
    main()
