"""Benchmark 5: a group of N projects with T tags each, as templates/group-sweep.yml sweeps it.

The emulator serves the group (GET /groups/:id/registry/repositories, 100 per page); the real
registry holds N repositories of T tags (one repository pushed for real, the others copied as
distribution's links on disk: devkit/seeding.copy_repository). Measured, each a real process:

- the planning job, ``registry-cleanup group-pipeline``: API requests, wall time, peak memory;
- one project's sweep, as one child job runs it (``sweep --project P``): the same three, for a
  dry run and for a run that deletes the project's orphans.

Planning must stay within 1 + ceil(N/100) requests: the group, then one page per 100
repositories, and nothing per project.

    python -m bench.group_sweep --projects 1000 --tags 100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import FLAVOURS, base_env, header, ratio_line, stack, tool
from devkit.local_registry import FlavourName
from devkit.seeding import copy_repository
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.fakes.seed import seed_pushed_long_ago

GROUP = "bench"
LIVE_SHARE = 0.3  # of each project's tags, the share whose branch still exists


@dataclass(frozen=True)
class Measured:
    requests: Counter[str]
    seconds: float
    peak_kib: int
    stdout: str

    def line(self, what: str) -> str:
        total = self.requests["total"]
        return (
            f"{what}: {total} requests, {self.seconds:.2f} s, peak memory "
            f"{self.peak_kib / 1024:.1f} MiB"
        )


def measure(emulator: GitLabEmulator, argv: Sequence[str], env: dict[str, str]) -> Measured:
    """Run one command, counting the emulator's requests and the process's peak RSS."""
    emulator.requests.clear()
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(list(argv), env=env, stdout=out, stderr=err, text=True)
        # wait4 reaps this one child and returns its own rusage (ru_maxrss: KiB on Linux).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} exited {code}: {stderr[-800:]}")
    return Measured(Counter(emulator.requests), seconds, int(usage.ru_maxrss), stdout)


def project_tags(tags: int) -> tuple[list[str], list[str]]:
    """(branches, tags): main, live feature branches, and orphaned tags to make ``tags``."""
    live = max(int(tags * LIVE_SHARE) - 1, 0)
    branches = ["main"] + [f"feature/f-{n:04d}" for n in range(live)]
    names = ["main"] + [f"feature-f-{n:04d}" for n in range(live)]
    names += [f"gone-{n:04d}" for n in range(tags - len(names))]
    return branches, names


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--max-jobs", type=int, default=100)
    parser.add_argument("--flavour", action="append", choices=FLAVOURS)
    args = parser.parse_args(argv)
    flavours: list[FlavourName] = args.flavour or list(FLAVOURS)

    header(f"group sweep: {args.projects} projects x {args.tags} tags, registries {flavours}")
    ratios = [measure_on(flavour, args) for flavour in flavours]
    for line in ratios:
        print(line)


def measure_on(flavour: FlavourName, args: argparse.Namespace) -> str:
    """Plan and sweep on a fresh registry of ``flavour``; return the RATIO line."""
    branches, tags = project_tags(args.tags)
    orphans = [tag for tag in tags if tag.startswith("gone-")]
    with stack("loopback", flavour) as s:
        seed_start = time.perf_counter()
        group = s.emulator.add_group(GROUP)
        paths = [f"{GROUP}/team-{n % 10}/app-{n:04d}" for n in range(args.projects)]
        for group_path in sorted({path.rsplit("/", 1)[0] for path in paths}):
            s.emulator.add_group(group_path)
        for index, path in enumerate(paths):
            project = s.emulator.add_project(path, branches=branches)
            s.emulator.add_repository(project)
            if index == 0:
                # Pushed a day ago (past --min-age); the copies keep the links' times.
                seed_pushed_long_ago(s.pusher, path, tags)
            else:
                copy_repository(s.pusher.registry, paths[0], path)
        token = s.emulator.group_token(group, Role.maintainer)
        print(f"{flavour}: seeded in {time.perf_counter() - seed_start:.1f} s")
        env = {**base_env(), "CI_API_V4_URL": s.api_url, "GITLAB_TOKEN": token}

        child = s.workdir / "child.yml"
        planning = measure(
            s.emulator,
            [
                tool("registry-cleanup"),
                *("group-pipeline", "--group", GROUP, "--output", str(child)),
                *("--max-jobs", str(args.max_jobs), "--image", "registry-cleanup:bench"),
            ],
            env,
        )
        pipeline = json.loads(child.read_text())
        jobs = [name for name in pipeline if name.startswith("registry-cleanup:sweep")]
        swept = sum(
            sum(line.startswith("registry-cleanup sweep") for line in pipeline[job]["script"])
            for job in jobs
        )
        if swept != args.projects:
            raise SystemExit(
                f"{flavour}: the child pipeline sweeps {swept} projects, not {args.projects}"
            )
        print(flavour, planning.line("planning job (group-pipeline)"))
        for route, count in sorted(planning.requests.items()):
            if route != "total":
                print(f"  {route}: {count}")
        print(f"  child pipeline: {len(jobs)} sweep jobs for {swept} projects")

        def one_project(path: str, *extra: str) -> Measured:
            argv = [tool("registry-cleanup"), "sweep", "--project", path, "--json", *extra]
            return measure(s.emulator, argv, env)

        dry = one_project(paths[0])
        planned = sum(t["status"] == "would-delete" for t in json.loads(dry.stdout)["tags"])
        print(flavour, dry.line(f"one project's sweep, dry run ({planned} would go)"))
        acting = one_project(paths[1], "--delete")
        left = s.registry.tags(paths[1])
        if sorted(left) != sorted(set(tags) - set(orphans)):
            raise SystemExit(f"{flavour}: the sweep of {paths[1]} left {len(left)} tags")
        print(flavour, acting.line(f"one project's sweep, --delete ({len(orphans)} deleted)"))

    bound = 1 + math.ceil(args.projects / 100)
    total = planning.requests["total"]
    return ratio_line(
        f"planning requests / (1 + ceil(N/100)), {flavour}, N={args.projects}",
        total / bound,
        "<= 1",
        total <= bound,
    )


if __name__ == "__main__":
    main()
