"""Each benchmark in bench/ runs end to end with a tiny N, so none of them can rot.

Nothing here judges speed: the timings are printed, not asserted. What is asserted is what must
hold whatever the machine: the run completes, its end-state check passed, it prints its ratios
last, and request counts (which do not depend on timing) stay within their bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import (
    group_sweep,
    plan_requests,
    plan_scaling,
    rate_limit,
    single_delete,
    sizes,
    sweep_throughput,
    sweep_timeline,
)
from bench.common import FLAVOURS, sweep_limit
from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, find_registry_binary, registry_environment
from tests.conftest import find_tool, require_tool

# The benchmarks, run small:
# `./dev test --quick` leaves this module out (the slow marker, tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def regbot_binary() -> str:
    """regbot, the peer benchmark 1 races: under CI a missing one fails, never skips."""
    return require_tool("regbot", find_tool("regbot"))


@pytest.fixture(scope="session")
def both_registry_binaries(registry_binary_2_8: str) -> None:
    """Every benchmark runs on both registries, so both binaries must be there."""
    require_tool("registry-v3", find_registry_binary("v3"))


def ratios_last(output: str, count: int) -> list[str]:
    lines = output.strip().splitlines()
    assert all(line.startswith("RATIO ") for line in lines[-count:]), output
    assert not any(line.startswith("RATIO ") for line in lines[:-count]), output
    return lines[-count:]


def rows(output: str) -> dict[tuple[str, str], str]:
    """(flavour, contender) -> the rest of its ROW line."""
    found = {}
    for line in output.splitlines():
        if line.startswith("ROW "):
            flavour, contender, rest = line.removeprefix("ROW ").split(" | ", 2)
            found[(flavour, contender)] = rest
    return found


@pytest.mark.usefixtures("regctl_binary", "regbot_binary", "both_registry_binaries")
def test_sweep_throughput_on_loopback_every_contender_on_both_registries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One regbot script and one regctl delete at a time: distribution 2.8's delete-by-digest
    # races with concurrent ones (500s, dangling tag entries: bench/RESULTS.md), which would fail
    # this smoke run now and then for the registry's sake, not the benchmark's.
    sweep_throughput.main(
        [
            *("--tags", "6", "--orphans", "4", "--regbot-parallel", "1"),
            *("--via", "api", "--via", "registry", "--registry-concurrency", "1"),
        ]
    )
    output = capsys.readouterr().out
    found = rows(output)
    for flavour in FLAVOURS:
        for contender in (
            "regctl tag rm loop",
            "regbot, 1 scripts at parallel 1",
            "sweep --via api, defaults",
            "sweep --via registry, --concurrency 1",
        ):
            assert found[(flavour, contender)].endswith("| end state equal"), output
    # listing: 1 repository list + 1 GraphQL page + 1 branch page + 1 git tag page
    limits = [key[1] for key in found if key[0] == "both"]
    assert [limit.split(" x ")[0] for limit in limits] == [
        "modelled limit: 8 requests (4 listing + 4 deletes)",
        "modelled limit at the maximum: 8 requests (4 listing + 4 deletes)",
    ], output
    assert limits[0].endswith(" / 16"), limits
    assert limits[1].endswith(" / 32"), limits
    # Per registry and way: vs the loop, vs regbot's best, vs the modelled limit.
    ratios = ratios_last(output, 12)
    assert sum("distribution v3.1.2" in line for line in ratios) == 6, ratios


@pytest.mark.usefixtures("regctl_binary", "regbot_binary", "both_registry_binaries")
def test_sweep_throughput_through_the_latency_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    sweep_throughput.main(
        ["--network", "25ms", "--tags", "5", "--orphans", "3", "--regbot-parallel", "1"]
    )
    output = capsys.readouterr().out
    found = rows(output)
    measured = {key: rest for key, rest in found.items() if key[0] in FLAVOURS}
    assert len(measured) == 6, output
    assert all(rest.endswith("| end state equal") for rest in measured.values()), output
    assert "x 50.0 ms / 16 |" in output, output  # the model's round trip, the sweep's default
    assert all("25ms" in line for line in ratios_last(output, 6))


def test_modelled_limit_counts_the_requests_no_sweep_can_avoid() -> None:
    # The small size: 151 tags (8 GraphQL pages of 20), 31 branches, 120 orphans.
    limit = sweep_limit(151, 120, 31, 0, round_trip=0.05, concurrency=4)
    assert (limit.listing, limit.deletes) == (1 + 8 + 1 + 1, 120)
    assert limit.seconds == pytest.approx(0.05 * 131 / 4)
    assert limit.seconds_listing_serial == pytest.approx(0.05 * (11 + 30))
    # 8 tag pages: the first, then 4 rounds of two; the repository list and the ref lists.
    assert limit.seconds_cursor_chained == pytest.approx(0.05 * (1 + 5 + 1 + 30))
    assert sweep_limit(5000, 4000, 1000, 150, 0.05, 32).listing == 1 + 250 + 10 + 2


def test_timeline_summary_measures_concurrency_and_gaps() -> None:
    def event(start: float, end: float, route: str) -> sweep_timeline.Event:
        return sweep_timeline.Event(start, end, route, "GET", f"/x/{start}", 200)

    events = [
        event(1.0, 1.1, "repository list"),
        event(1.3, 1.4, "GraphQL"),  # 200 ms with nothing in flight before it
        event(1.4, 1.6, "delete tag"),
        event(1.4, 1.6, "delete tag"),
        event(1.5, 1.6, "tag details"),
    ]
    text = "\n".join(sweep_timeline.summary(events, exited=2.0))
    assert "planning, first request to the last listing answer: 0.40 s, 2 requests" in text
    assert (
        "deleting, last listing answer to last answer: 0.20 s, 3 requests, "
        "in flight mean 2.50, at most 3" in text
    )
    mean, most = sweep_timeline.in_flight(events[2:], 1.4, 1.6)
    assert mean == pytest.approx(2.5)
    assert most == 3
    assert sweep_timeline.busy_intervals(events) == [(1.0, 1.1), (1.3, 1.6)]
    assert "before the first request (Python, imports, config): 1.00 s" in text
    assert "0.20 s in 1 gaps" in text
    assert "200 ms at 1.10 s, after repository list before GraphQL" in text


@pytest.mark.usefixtures("both_registry_binaries")
def test_sweep_timeline_records_every_request_of_one_sweep(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    timeline = tmp_path / "timeline.jsonl"
    sweep_timeline.main(["--tags", "8", "--orphans", "5", "--timeline", str(timeline)])
    output = capsys.readouterr().out
    assert "end state: equal" in output
    events = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert f"timeline: {len(events)} requests written" in output
    routes = [e["route"] for e in events]
    # 8 tags, one GraphQL page: listed, read again, its 5 orphans deleted by one mutation.
    assert routes.count("GraphQL tag page") == 1, routes
    assert routes.count("GraphQL tag page read again") == 1, routes
    assert routes.count("GraphQL delete tags") == 1, routes
    assert routes.count("delete tag") == routes.count("tag details") == 0, routes
    assert {"repository list", "branch page"} <= set(routes), routes
    assert all(e["start"] <= e["end"] for e in events)
    assert "requests from the client straight to the registry: 0" in output
    assert "  deleting, last listing answer to last answer:" in output


@pytest.mark.usefixtures("regctl_binary", "both_registry_binaries")
def test_plan_requests_stay_within_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    plan_requests.main(["--tags", "60", "--tags", "130", "--rest-up-to", "60"])
    output = capsys.readouterr().out
    # Request counts do not depend on timing: with GraphQL, the bound holds on both registries.
    ratios = ratios_last(output, 4)
    for line in ratios:
        assert line.endswith("met)"), output
    assert {flavour for flavour in FLAVOURS if any(f", {flavour}," in r for r in ratios)} == set(
        FLAVOURS
    )
    assert "without GraphQL (REST only)" in output


@pytest.mark.usefixtures("regctl_binary")
def test_sizes_benchmark_gives_both_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    small = ["--network", "loopback", "--tags", "20", "--orphans", "10", "--rounds", "1"]
    sizes.main([*small, "--scale", "40", "--scale", "80"])
    output = capsys.readouterr().out
    *time_ratios, reads = ratios_last(output, 3)
    assert all("with --sizes / without" in line for line in time_ratios), output
    # Request counts do not depend on timing: one read per distinct manifest.
    assert reads.startswith("RATIO manifest reads per distinct manifest"), output
    assert reads.endswith("met)"), output


def test_plan_scaling(capsys: pytest.CaptureFixture[str]) -> None:
    # Pure planning: no registry involved, so nothing to run twice.
    plan_scaling.main(["--tags", "200", "--tags", "2000", "--branches", "300"])
    output = capsys.readouterr().out
    assert "N=2000:" in output
    ratios_last(output, 2)


@pytest.mark.usefixtures("regctl_binary", "both_registry_binaries")
def test_single_delete_with_its_overhead_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    single_delete.main(["--pairs", "2"])
    output = capsys.readouterr().out
    for flavour in FLAVOURS:
        assert f"{flavour}:   python start + imports" in output
        assert f"{flavour}:   regctl tag rm: median" in output
    ratios_last(output, 2)


def _imported(argv: list[str], env: dict[str, str]) -> set[str]:
    """The modules a real ``registry-cleanup ARGS`` run imports (python -X importtime)."""
    code = "import sys; from registry_cleanup.cli import main; sys.argv[0] = 'x'; main()"
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_help_and_delete_import_neither_python_gitlab_nor_rich_progress(
    registry: LocalRegistry, pusher: ImagePusher
) -> None:
    pusher.push("group/app", "feature-x")
    env = {
        **registry_environment(),
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "REGISTRY_CLEANUP_TLS": "disabled",
    }

    for argv in (["--help"], ["delete", f"{registry.host}/group/app:feature-x"]):
        modules = _imported(argv, env)
        assert "registry_cleanup.cli" in modules  # the measurement itself works
        assert not {m for m in modules if m == "gitlab" or m.startswith("gitlab.")}, argv
        assert "rich.progress" not in modules, argv
        if argv[0] == "delete":
            # Only its own command module: the others are about 40-60 ms of every start.
            others = {"sweep", "group", "restore", "gitlab_admin"}
            assert not {f"registry_cleanup.cli.{name}" for name in others} & modules
    assert registry.tags("group/app") == []


@pytest.mark.usefixtures("regctl_binary", "both_registry_binaries")
def test_group_sweep_benchmark_plans_with_group_level_calls_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    group_sweep.main(["--projects", "7", "--tags", "6", "--max-jobs", "3"])
    output = capsys.readouterr().out
    assert output.count("child pipeline: 3 sweep jobs for 7 projects") == len(FLAVOURS), output
    ratios = ratios_last(output, len(FLAVOURS))
    assert all(line.endswith("met)") for line in ratios), output
    assert all(f", {flavour}," in line for flavour, line in zip(FLAVOURS, ratios, strict=True))


@pytest.mark.usefixtures("regctl_binary", "both_registry_binaries")
def test_rate_limit_benchmark_sweeps_under_the_limit_in_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 50 orphans take about 13 requests (GraphQL pages of 20): three windows and more of 4.
    rate_limit.main(
        [*("--tags", "60", "--orphans", "50", "--limit", "4", "--period", "1"), "--concurrency=2"]
    )
    output = capsys.readouterr().out
    found = rows(output)
    for flavour in FLAVOURS:
        for mode in rate_limit.MODES:
            assert found[(flavour, mode)].endswith("end state equal"), output
        assert "| 0 answered 429 |" in found[(flavour, "headers on every response")], output
    ratios = ratios_last(output, 3 * len(FLAVOURS))
    assert sum(line.startswith("RATIO 429s, headers on every response") for line in ratios) == 2
    assert all(line.endswith("met)") for line in ratios if line.startswith("RATIO 429s")), output
