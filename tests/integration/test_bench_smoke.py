"""Each benchmark in bench/ runs end to end with a tiny N, so none of them can rot.

Nothing here judges speed: the timings are printed, not asserted. What is asserted is what must
hold whatever the machine: the run completes, its end-state check passed, it prints its ratios
last, and request counts (which do not depend on timing) stay within their bound.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import group_sweep, plan_requests, plan_scaling, single_delete, sweep_throughput
from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, registry_environment


def ratios_last(output: str, count: int) -> list[str]:
    lines = output.strip().splitlines()
    assert all(line.startswith("RATIO ") for line in lines[-count:]), output
    assert not any(line.startswith("RATIO ") for line in lines[:-count]), output
    return lines[-count:]


@pytest.mark.usefixtures("regctl_binary", "registry_binary_2_8")
def test_sweep_throughput_on_loopback_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    # One regctl delete at a time: distribution 2.8's delete-by-digest races with concurrent
    # ones and can leave a dangling tag entry (bench/RESULTS.md), which would fail this smoke
    # run now and then for the registry's sake, not the benchmark's.
    sweep_throughput.main(
        [
            *("--tags", "10", "--orphans", "6"),
            *("--via", "api", "--via", "registry", "--registry-concurrency", "1"),
        ]
    )
    output = capsys.readouterr().out
    assert "end state: equal in every repository" in output
    ratios_last(output, 2)


@pytest.mark.usefixtures("regctl_binary", "registry_binary_2_8")
def test_sweep_throughput_through_the_latency_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    sweep_throughput.main(["--network", "25ms", "--tags", "5", "--orphans", "3"])
    output = capsys.readouterr().out
    assert "end state: equal in every repository" in output
    assert "25ms" in ratios_last(output, 1)[0]


@pytest.mark.usefixtures("regctl_binary", "registry_binary_2_8")
def test_plan_requests_stay_within_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    plan_requests.main(["--tags", "60", "--tags", "130"])
    output = capsys.readouterr().out
    # Request counts do not depend on timing: with GraphQL, the bound holds.
    for line in ratios_last(output, 2):
        assert line.endswith("met)"), output
    assert "without GraphQL (REST only)" in output


def test_plan_scaling(capsys: pytest.CaptureFixture[str]) -> None:
    plan_scaling.main(["--tags", "200", "--tags", "2000", "--branches", "300"])
    output = capsys.readouterr().out
    assert "N=2000:" in output
    ratios_last(output, 2)


@pytest.mark.usefixtures("regctl_binary", "registry_binary_2_8")
def test_single_delete_with_its_overhead_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    single_delete.main(["--pairs", "2"])
    output = capsys.readouterr().out
    assert "python start + imports" in output
    assert "regctl tag rm: median" in output
    ratios_last(output, 1)


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
    assert registry.tags("group/app") == []


@pytest.mark.usefixtures("regctl_binary", "registry_binary")
def test_group_sweep_benchmark_plans_with_group_level_calls_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    group_sweep.main(["--projects", "7", "--tags", "6", "--max-jobs", "3"])
    output = capsys.readouterr().out
    assert "child pipeline: 3 sweep jobs for 7 projects" in output
    assert ratios_last(output, 1)[0].endswith("met)"), output
