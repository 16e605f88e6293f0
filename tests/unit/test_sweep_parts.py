"""The sweep's small parts: bounded pool, CI-log progress, policy checks, lazy imports."""

from __future__ import annotations

import io
import subprocess
import sys
import threading

import pytest

from registry_cleanup.domain.policy import validate
from registry_cleanup.errors import InputError
from registry_cleanup.output.progress import LogProgress
from registry_cleanup.pool import run_bounded


def test_pool_bounds_work_in_flight_and_submits_lazily():
    """Each call holds on until the one before it finished and a moment passed, so calls pile
    up to whatever bound the pool really keeps. An item may be drawn from the source only when
    fewer than 3 calls are unfinished: lazily, never more than the bound queued."""
    lock = threading.Lock()
    in_flight = 0
    most = 0
    finished = 0
    early: list[int] = []  # items drawn while 3 calls were still unfinished

    def items():
        for n in range(20):
            with lock:
                if n - finished >= 3:
                    early.append(n)
            yield n

    def worker(n: int) -> int:
        nonlocal in_flight, most, finished
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        # Long enough for an eager pool to draw and start everything it would.
        threading.Event().wait(0.05)
        with lock:
            in_flight -= 1
            finished += 1
        return n * 2

    results = sorted(run_bounded(items(), worker, 3))

    assert results == [n * 2 for n in range(20)]
    assert early == []
    assert most == 3


def test_one_failure_does_not_stop_the_rest():
    def worker(n: int) -> str:
        return "failed" if n == 2 else "deleted"

    assert sorted(run_bounded(range(5), worker, 2)) == ["deleted"] * 4 + ["failed"]


def test_log_progress_prints_at_start_every_interval_and_at_the_end():
    now = [0.0]
    stream = io.StringIO()
    progress = LogProgress(stream, interval=10, clock=lambda: now[0])
    progress.start(4, "sweep: deleting")
    progress.advance("deleted")
    now[0] = 11
    progress.advance("failed")
    progress.advance("deleted")
    progress.advance("deleted")
    progress.close()
    assert stream.getvalue().splitlines() == [
        "sweep: deleting: 0/4",
        "sweep: deleting: 2/4 (deleted 1, failed 1)",
        "sweep: deleting: 4/4 (deleted 3, failed 1)",
    ]


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"cadence": "2d"}, "--cadence"),
        ({"keep_n": 7}, "--keep-n 7"),
        ({"older_than": "1month"}, "--older-than"),
        ({"name_regex": "a(?!b)"}, "RE2"),
        ({"name_regex_keep": "(a)\\1"}, "RE2"),
        ({"name_regex": "("}, "not a valid regular expression"),
        ({"name_regex": "x" * 252}, "longer than 251 characters"),
    ],
)
def test_policy_values_outside_gitlabs_sets_are_refused(attributes, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        validate(attributes)


def test_policy_passes_only_what_was_given():
    assert validate({"cadence": "7d", "keep_n": None, "enabled": False}) == {
        "cadence": "7d",
        "enabled": False,
    }


@pytest.mark.parametrize("args", [["--help"], ["delete", "--help"], ["sweep", "--help"]])
def test_help_and_delete_do_not_load_python_gitlab_or_rich_progress(args):
    code = (
        "import sys\n"
        "from registry_cleanup import cli\n"
        f"sys.argv = ['registry-cleanup', *{args!r}]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('gitlab', 'rich.progress') if m in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_policy_regexes_are_sent_grouped_so_gitlab_reads_the_whole_tag():
    sent = validate({"name_regex": "review-.*|feature-.*", "name_regex_keep": "v.*|main"})
    assert sent == {"name_regex": "(?:review-.*|feature-.*)", "name_regex_keep": "(?:v.*|main)"}
    assert validate({"name_regex_keep": ""}) == {"name_regex_keep": ""}
    assert validate({"name_regex": "x" * 251})["name_regex"] == "(?:" + "x" * 251 + ")"
