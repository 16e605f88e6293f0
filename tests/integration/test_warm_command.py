"""run_cli's warm starts (tests/support/warm_command.py) are the installed command's fresh
starts: the same output and exit status, a fresh start wherever start-up could differ, and a
child that a time-out kills."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from registry_cleanup.gitlab.client import DEFAULT_TIMEOUT_SECONDS
from tests.support.warm_command import FRESH_ENV, WarmCommand

CASES = [
    pytest.param(("--version",), None, id="version"),
    pytest.param(("--help",), None, id="help"),
    pytest.param(("sweep", "--help"), None, id="sweep-help"),
    pytest.param(("sweep", "--keep-n", "many"), None, id="bad-input"),
    # The password comes from stdin (too short to mask: a notice says so), then regctl finds
    # no registry there.
    pytest.param(
        (
            *("delete", "127.0.0.1:9/grp/app:x", "--username", "me", "--password-stdin"),
            *("--tls", "disabled", "--dry-run"),
        ),
        "pw\n",
        id="stdin-and-regctl",
    ),
    # Not a command: click's usage error, exit 2.
    pytest.param(("no-such-command",), None, id="usage-error"),
]


def _fresh(warm: WarmCommand, args: tuple[str, ...], stdin: str | None) -> tuple[int, str, str]:
    completed = subprocess.run(
        [warm.command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=warm.env,
        timeout=120,
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


@pytest.mark.parametrize(("args", "stdin"), CASES)
def test_a_warm_start_answers_as_a_fresh_process_does(
    warm_command: WarmCommand, args: tuple[str, ...], stdin: str | None
) -> None:
    warm = warm_command.run([warm_command.command, *args], warm_command.env, stdin, timeout=120)

    assert warm is not None, "this run should have been a warm start"
    assert warm == _fresh(warm_command, args, stdin)
    assert warm[1] or warm[2], "the case printed nothing to compare"


def test_each_run_is_a_process_of_its_own(warm_command: WarmCommand) -> None:
    """A variable of one run is not there in the next: each child starts from the server's
    state, not from the last run's."""
    args = ["sweep", "--dry-run", "--json"]
    given = {"GITLAB_TOKEN": "glpat-x", "CI_PROJECT_ID": "1", "CI_API_V4_URL": "not a url"}
    env = {**warm_command.env, **given}
    first = warm_command.run([warm_command.command, *args], env, None, timeout=120)
    second = warm_command.run([warm_command.command, *args], warm_command.env, None, timeout=120)

    assert first is not None
    assert second is not None
    assert "not a url" in first[2]
    assert "not a url" not in second[2]
    assert second == _fresh(warm_command, tuple(args), None)


def test_a_run_starts_fresh_where_start_up_reads_its_environment(
    warm_command: WarmCommand, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = warm_command.env
    # The imports read HOME (python-gitlab's configuration file names) and typer's switches.
    assert "HOME" in warm_command.read_on_import
    assert warm_command.starts_as_fresh(base)
    assert not warm_command.starts_as_fresh({**base, "HOME": "/elsewhere"})
    # The interpreter reads these before any import.
    assert not warm_command.starts_as_fresh({**base, "PYTHONWARNINGS": "error"})
    assert not warm_command.starts_as_fresh({**base, "LC_ALL": "C"})
    elsewhere = {**base, "HOME": "/"}
    assert warm_command.run([warm_command.command, "--version"], elsewhere, None, 60) is None
    # A variable read only once the command runs changes nothing at start.
    assert warm_command.starts_as_fresh({**base, "CI_PROJECT_ID": "7"})
    monkeypatch.setenv(FRESH_ENV, "1")
    assert not warm_command.starts_as_fresh(base)


def test_a_time_out_kills_the_run(warm_command: WarmCommand) -> None:
    """GitLab accepts the connection and never answers: the caller gives up after its time-out,
    as subprocess.run does, and the child is killed (its connection closes)."""
    seen: list[str] = []
    closed_at: list[float] = []

    def silent_gitlab(server: socket.socket) -> None:
        # Accepts the command's connection, reads its request and waits for the end.
        connection, _ = server.accept()
        with connection:
            connection.settimeout(60)
            while connection.recv(65536):
                seen.append("request")
        seen.append("closed")
        closed_at.append(time.monotonic())

    with socket.create_server(("127.0.0.1", 0)) as gitlab:
        gitlab.settimeout(60)
        listening = threading.Thread(target=silent_gitlab, args=(gitlab,), daemon=True)
        listening.start()
        env = {
            **warm_command.env,
            "CI_API_V4_URL": f"http://127.0.0.1:{gitlab.getsockname()[1]}/api/v4",
            "CI_PROJECT_ID": "1",
            "GITLAB_TOKEN": "glpat-never-answered",
        }
        started = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            warm_command.run([warm_command.command, "sweep"], env, None, timeout=5)
        gave_up = time.monotonic()
        assert gave_up - started < 30
        listening.join(60)

    assert seen[:1] == ["request"], "the command never reached GitLab"
    assert seen[-1:] == ["closed"], "the command still holds its connection: not killed"
    # Killed, not given up by itself: its own time-out for a GitLab answer is far longer.
    assert closed_at[0] - gave_up < DEFAULT_TIMEOUT_SECONDS / 2
