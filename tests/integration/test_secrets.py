"""The registry password stays secret: not in argv or environments, output, --json or errors.

Runs the real command with the real regctl behind a spy wrapper (which records what each regctl
call was given and can turn on regctl's trace output), samples /proc for regctl processes while
they run, and checks the private regctl configuration's modes and its removal — on success,
failure, SIGINT and SIGTERM.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.local_registry import LocalRegistry
from registry_cleanup.registry.hosts import TlsMode, is_loopback, tls_notice
from tests.conftest import PushedOnce, RunCli
from tests.support.fault_proxy import Fault, FaultProxy, wait_for
from tests.support.proc_sampler import ProcSampler
from tests.support.regctl_spy import Spy, make_spy
from tests.support.scenario import REPO, TARGET, interrupt, job_env, running_delete, seed, state

# Registry behaviour: on distribution 2.8 (regctl's placeholder path) and v3 (DELETE by tag).
pytestmark = pytest.mark.both_registries


@pytest.fixture
def seeded(registry: LocalRegistry, pushed_once: PushedOnce) -> dict[str, str]:
    return pushed_once(registry, seed)


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    # 40 ms per request keeps each regctl process alive long enough to be sampled in /proc.
    with FaultProxy(registry.host, latency=0.04, lifetime=300) as running:
        yield running


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """TMPDIR for the command: where its private regctl config directory is made."""
    directory = tmp_path / "scratch"
    directory.mkdir()
    return directory


def secret_forms(registry: LocalRegistry) -> list[str]:
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    return [registry.password, basic]


def assert_secret_free(text: str, registry: LocalRegistry) -> None:
    for secret in secret_forms(registry):
        assert secret not in text


def assert_private_config(spy: Spy, scratch: Path) -> None:
    calls = spy.calls()
    assert calls, "regctl was never called"
    for call in calls:
        config = Path(str(call["config"]))
        assert config.parent.parent == scratch
        assert call["config_mode"] == 0o600, call
        assert call["dir_mode"] == 0o700, call
    assert list(scratch.iterdir()) == [], "the private regctl config outlived the run"


@pytest.mark.parametrize(
    ("flags", "faults"),
    [
        ((), ()),
        (("-v",), ()),
        (("-v", "--json"), ()),
        (("-v",), (Fault.respond(503, methods={"DELETE"}, times=None),)),
        (("-v", "--json"), (Fault.respond(503, methods={"DELETE"}, times=None),)),
    ],
    ids=["quiet", "verbose", "verbose-json", "verbose-failing", "verbose-json-failing"],
)
def test_password_is_in_no_argv_environment_or_output(
    run_cli: RunCli,
    registry: LocalRegistry,
    seeded: dict[str, str],
    proxy: FaultProxy,
    regctl_binary: str,
    tmp_path: Path,
    scratch: Path,
    flags: tuple[str, ...],
    faults: tuple[Fault, ...],
) -> None:
    spy = make_spy(tmp_path / "spy", regctl_binary, trace=True)
    proxy.add(*faults)
    env = job_env(registry, proxy, REGISTRY_CLEANUP_REGCTL=str(spy.path), TMPDIR=str(scratch))

    with ProcSampler(regctl_binary) as sampler:
        result = run_cli("delete", *flags, env=env)

    assert result.returncode == (1 if faults else 0), result.output
    if "-v" in flags:
        assert "level=" in result.stderr  # regctl's trace really was relayed
    assert_secret_free(result.output, registry)
    if "--json" in flags:
        json.loads(result.stdout)
    assert sampler.samples, "no regctl process was seen in /proc"
    for sample in sampler.samples:
        assert_secret_free("\0".join(sample.cmdline + sample.environ), registry)
    for call in spy.calls():
        assert_secret_free(json.dumps(call["argv"]), registry)
        assert_secret_free(json.dumps(call["env"]), registry)
    assert_private_config(spy, scratch)
    # The login really used the password (else this test proves nothing).
    assert ["registry", "login", proxy.host] == list(spy.calls()[0]["argv"])[:3]


@pytest.mark.parametrize("password_ok", [True, False], ids=["right", "wrong"])
def test_what_regctl_echoes_of_its_secrets_is_redacted(
    run_cli: RunCli,
    registry: LocalRegistry,
    seeded: dict[str, str],
    proxy: FaultProxy,
    regctl_binary: str,
    tmp_path: Path,
    scratch: Path,
    password_ok: bool,
) -> None:
    """A regctl that repeats what it read on stdin (the password) on stderr is still safe."""
    spy = make_spy(tmp_path / "spy", regctl_binary, echo=True)
    password = registry.password if password_ok else "wrong-password-4711"
    env = job_env(
        registry,
        proxy,
        CI_REGISTRY_PASSWORD=password,
        REGISTRY_CLEANUP_REGCTL=str(spy.path),
        TMPDIR=str(scratch),
    )

    for flags in ((), ("-v",), ("-v", "--json")):
        result = run_cli("delete", *flags, env=env)
        assert password not in result.output
        if "-v" in flags:
            assert "spy: regctl was given '[REDACTED]" in result.stderr
            assert "spy: Authorization: Basic [REDACTED]" in result.stderr
        if not password_ok:
            assert result.returncode == 1
            assert "authentication failed" in result.stderr
    assert_secret_free(result.output, registry)
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("signum", "whole_group", "code"),
    [
        (signal.SIGINT, True, 130),  # Ctrl-C at a terminal: the whole foreground group
        (signal.SIGINT, False, 130),
        (signal.SIGTERM, False, 128 + signal.SIGTERM),  # a CI job cancelled or timed out
    ],
    ids=["sigint-group", "sigint", "sigterm"],
)
def test_private_config_is_removed_when_interrupted(
    registry: LocalRegistry,
    seeded: dict[str, str],
    proxy: FaultProxy,
    regctl_binary: str,
    scratch: Path,
    signum: signal.Signals,
    whole_group: bool,
    code: int,
) -> None:
    before = state(registry)
    with ProcSampler(regctl_binary) as sampler:
        # The registry takes a minute to resolve the tag: the run blocks.
        proxy.add(Fault.delay(60, methods={"HEAD"}, path=rf"/manifests/{TARGET}$", times=None))
        env = job_env(registry, proxy, REGISTRY_CLEANUP_REGCTL=regctl_binary, TMPDIR=str(scratch))
        with running_delete(env) as process:
            wait_for(
                lambda: ("HEAD", f"/v2/{REPO}/manifests/{TARGET}") in proxy.in_flight,
                30,
                "regctl to block on the slow registry",
            )
            # The sampler reads /proc every few ms, but on a loaded machine (other pytest
            # workers) it can lag behind a regctl the signal ends at once: it sees regctl first.
            wait_for(lambda: sampler.samples != [], 30, "the sampler to see regctl")
            configs = [p for p in scratch.iterdir() if p.name.startswith("registry-cleanup-")]
            assert len(configs) == 1
            assert (configs[0].stat().st_mode & 0o777) == 0o700
            assert (configs[0] / "config.json").stat().st_mode & 0o777 == 0o600
            stderr = interrupt(process, signum, whole_group=whole_group)

        assert process.returncode == code, stderr
        assert list(scratch.iterdir()) == []
        assert sampler.samples, "regctl never ran"
        # Our regctl's private config lives under TMPDIR, so its environment names scratch;
        # the same prefix must have marked the regctl the command ran, or the check is empty.
        ours = f"REGCTL_CONFIG={scratch}{os.sep}"
        assert any(e.startswith(ours) for s in sampler.samples for e in s.environ)
        assert sampler.running(environ_prefix=ours) == [], "a regctl process outlived the command"
    # One line that says what stopped the run, and nothing else.
    said = "interrupted" if signum == signal.SIGINT else "terminated"
    assert stderr.splitlines() == [f"registry-cleanup: {said}"], stderr
    assert registry.password not in stderr
    assert proxy.changes() == []
    assert state(registry) == before


@pytest.mark.parametrize(
    ("host", "tls", "logged"),
    [
        ("registry.example.com", TlsMode.enabled, None),
        ("127.0.0.1:5000", TlsMode.enabled, None),
        ("registry.example.com", TlsMode.insecure, "verification is off"),
        ("127.0.0.1:5000", TlsMode.insecure, "verification is off"),
        ("registry.example.com:5000", TlsMode.disabled, "plain HTTP"),
        ("127.example.com", TlsMode.disabled, "plain HTTP"),
        ("127.0.0.1:5000", TlsMode.disabled, None),
        ("localhost:5000", TlsMode.disabled, None),
        ("[::1]:5000", TlsMode.disabled, None),
    ],
)
def test_turning_tls_off_is_logged_except_plain_http_on_loopback(
    host: str, tls: TlsMode, logged: str | None
) -> None:
    notice = tls_notice(host, tls)
    if logged is None:
        assert notice is None
    else:
        assert notice is not None
        assert logged in notice
        assert host in notice
    assert is_loopback(host) == host.startswith(("127.0.0.1", "localhost", "[::1]"))
