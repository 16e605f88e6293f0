"""A catalogue of bad input for `registry-cleanup delete`, run against a real registry.

Every case must end with exit 2 (the input is wrong: nothing was attempted, so the proxy saw no
request at all) or exit 1 (found wrong while acting), exactly one line on stderr that names the
problem, nothing on stdout, and — counted at the proxy — no request that could change anything.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import FlavourName, LocalRegistry
from tests.conftest import CliResult, PushedOnce, RunCli
from tests.support.fault_proxy import FaultProxy
from tests.support.in_process import run_in_process
from tests.support.scenario import REPO, TARGET, job_env, seed, state
from tests.support.tls import make_tls_files

DIGEST = "sha256:" + "0123456789abcdef" * 4
PEM_HEADER = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class Bad:
    id: str
    code: int
    says: str  # a fragment of the one stderr line
    args: tuple[str, ...] = ()
    # Overrides of the branch job's variables; None removes a variable. "{host}" is the proxy.
    env: dict[str, str | None] = field(default_factory=dict)
    stdin: str | None = None


INPUT = 2
RUNTIME = 1

CATALOGUE = [
    # -- the tool it drives --------------------------------------------------------------------
    Bad(
        "regctl-not-installed",
        INPUT,
        "regctl is not installed: `delete`, `restore` and `--via registry` drive regctl v0.11.5",
        env={"PATH": "{empty}", "REGISTRY_CLEANUP_REGCTL": None},
    ),
    # -- missing or empty CI variables --------------------------------------------------------
    Bad("no-registry-image", INPUT, "CI_REGISTRY_IMAGE is unset", env={"CI_REGISTRY_IMAGE": None}),
    Bad("empty-registry-image", INPUT, "CI_REGISTRY_IMAGE is unset", env={"CI_REGISTRY_IMAGE": ""}),
    Bad(
        "no-ref-variables",
        INPUT,
        "CI_COMMIT_REF_SLUG and CI_COMMIT_REF_NAME are unset",
        env={"CI_COMMIT_REF_NAME": None, "CI_COMMIT_BRANCH": None},
    ),
    Bad(
        "empty-ref-variables",
        INPUT,
        "CI_COMMIT_REF_SLUG and CI_COMMIT_REF_NAME are unset",
        env={"CI_COMMIT_REF_NAME": "", "CI_COMMIT_REF_SLUG": "", "CI_COMMIT_BRANCH": ""},
    ),
    Bad("ref-name-of-dashes", INPUT, "empty slug", env={"CI_COMMIT_REF_NAME": "---"}),
    Bad("ref-name-of-slashes", INPUT, "empty slug", env={"CI_COMMIT_REF_NAME": "///"}),
    Bad("ref-name-of-symbols", INPUT, "empty slug", env={"CI_COMMIT_REF_NAME": "_.@!"}),
    Bad("slug-with-leading-dash", INPUT, "invalid tag", env={"CI_COMMIT_REF_SLUG": "-x"}),
    Bad("slug-with-space", INPUT, "invalid tag", env={"CI_COMMIT_REF_SLUG": "a b"}),
    Bad("slug-too-long", INPUT, "invalid tag", env={"CI_COMMIT_REF_SLUG": "s" * 129}),
    Bad("slug-with-slash", INPUT, "invalid tag", env={"CI_COMMIT_REF_SLUG": "a/b"}),
    # -- CI_REGISTRY_IMAGE and CI_REGISTRY -------------------------------------------------
    Bad(
        "image-uppercase-repository",
        INPUT,
        "invalid repository path",
        env={"CI_REGISTRY_IMAGE": "{host}/Group/App"},
    ),
    Bad(
        "image-with-scheme",
        INPUT,
        "URL scheme",
        env={"CI_REGISTRY_IMAGE": "https://{host}/group/app"},
    ),
    Bad("image-without-path", INPUT, "no registry host", env={"CI_REGISTRY_IMAGE": "{host}"}),
    Bad(
        "image-with-trailing-slash",
        INPUT,
        "invalid repository path",
        env={"CI_REGISTRY_IMAGE": "{host}/group/app/"},
    ),
    Bad(
        "image-with-a-tag",
        INPUT,
        "invalid repository path",
        env={"CI_REGISTRY_IMAGE": "{host}/group/app:v1"},
    ),
    Bad(
        "image-with-a-digest",
        INPUT,
        "digest",
        env={"CI_REGISTRY_IMAGE": "{host}/group/app@" + DIGEST},
    ),
    Bad(
        "image-on-docker-hub-by-accident",
        INPUT,
        "no registry host",
        env={"CI_REGISTRY_IMAGE": "group/app", "CI_REGISTRY": None},
    ),
    Bad(
        "image-port-out-of-range",
        INPUT,
        "invalid registry host",
        env={"CI_REGISTRY_IMAGE": "127.0.0.1:99999/group/app", "CI_REGISTRY": None},
    ),
    Bad("registry-with-scheme", INPUT, "not a host name", env={"CI_REGISTRY": "https://{host}"}),
    Bad("registry-with-path", INPUT, "not a host name", env={"CI_REGISTRY": "{host}/v2"}),
    Bad("registry-elsewhere", INPUT, "pass --registry", env={"CI_REGISTRY": "other.example:5000"}),
    # -- the REF argument ----------------------------------------------------------------------
    Bad("ref-empty", INPUT, "is empty", args=("",)),
    Bad("ref-blank", INPUT, "is empty", args=("   ",)),
    Bad("ref-without-tag", INPUT, "has no tag", args=("{host}/group/app",)),
    Bad("ref-with-empty-tag", INPUT, "empty tag", args=("{host}/group/app:",)),
    Bad("ref-without-registry", INPUT, "has no tag", args=("app:feature-x",)),
    Bad("ref-tag-too-long", INPUT, "invalid tag", args=("{host}/group/app:" + "t" * 129,)),
    Bad("ref-tag-leading-dot", INPUT, "invalid tag", args=("{host}/group/app:.x",)),
    Bad("ref-uppercase-repository", INPUT, "invalid repository path", args=("{host}/App:x",)),
    Bad("ref-empty-path-component", INPUT, "invalid repository path", args=("{host}//app:x",)),
    Bad("ref-with-scheme", INPUT, "URL scheme", args=("http://{host}/group/app:x",)),
    Bad("ref-by-digest", INPUT, "digest", args=("{host}/group/app@" + DIGEST,)),
    Bad("ref-tag-and-digest", INPUT, "digest", args=("{host}/group/app:x@" + DIGEST,)),
    Bad("two-refs", INPUT, "unexpected extra argument", args=("{host}/a:x", "{host}/b:y")),
    # -- --expect-digest -------------------------------------------------------------------
    Bad("digest-short", INPUT, "--expect-digest", args=("--expect-digest", "sha256:abc")),
    Bad("digest-uppercase", INPUT, "--expect-digest", args=("--expect-digest", DIGEST.upper())),
    Bad("digest-sha512", INPUT, "--expect-digest", args=("--expect-digest", "sha512:" + "a" * 128)),
    Bad("digest-bare-hex", INPUT, "--expect-digest", args=("--expect-digest", "a" * 64)),
    Bad(
        "digest-from-env",
        INPUT,
        "--expect-digest",
        env={"REGISTRY_CLEANUP_EXPECT_DIGEST": "sha256:" + "g" * 64},
    ),
    # -- --protect: invalid, and valid in Python but not in RE2 (GitLab's syntax) ------------
    Bad("protect-unbalanced", INPUT, "not a valid regular expression", args=("--protect", "(")),
    Bad("protect-lookahead", INPUT, "RE2", args=("--protect", "feature-(?=x)")),
    Bad("protect-backreference", INPUT, "RE2", args=("--protect", r"(a)\1")),
    Bad("protect-repetition-too-big", INPUT, "RE2", args=("--protect", "a{1001}")),
    Bad("protect-bad-range", INPUT, "RE2", args=("--protect", "[z-a]")),
    Bad("protect-from-env", INPUT, "RE2", env={"REGISTRY_CLEANUP_PROTECT": "main (?<=x)y"}),
    # -- other options ---------------------------------------------------------------------
    Bad("tls-unknown", INPUT, "--tls", args=("--tls", "maybe")),
    Bad("tls-empty", INPUT, "--tls", args=("--tls", "")),
    Bad("timeout-zero", INPUT, "--timeout", args=("--timeout", "0")),
    Bad("timeout-negative", INPUT, "--timeout", args=("--timeout", "-5")),
    Bad("timeout-not-a-number", INPUT, "--timeout", env={"REGISTRY_CLEANUP_TIMEOUT": "soon"}),
    Bad("timeout-too-long", INPUT, "--timeout", args=("--timeout", "99999")),
    Bad("dry-run-not-a-boolean", INPUT, "--dry-run", env={"REGISTRY_CLEANUP_DRY_RUN": "maybe"}),
    Bad("ca-file-missing", INPUT, "--ca-file", args=("--ca-file", "/nonexistent/ca.pem")),
    Bad("ca-file-is-a-directory", INPUT, "--ca-file", args=("--ca-file", "/")),
    Bad("ca-file-not-pem", INPUT, "no PEM certificate", args=("--ca-file", "{not_pem}")),
    Bad("unknown-option", INPUT, "--frobnicate", args=("--frobnicate",)),
    # -- credentials -----------------------------------------------------------------------
    Bad(
        "password-stdin-without-user",
        INPUT,
        "--password-stdin needs --username",
        args=("--password-stdin",),
        env={"CI_REGISTRY_USER": None},
        stdin="{password}\n",
    ),
    Bad(
        "password-stdin-empty",
        INPUT,
        "empty password",
        args=("--password-stdin",),
        stdin="\n",
    ),
    Bad(
        "password-without-user",
        INPUT,
        "CI_REGISTRY_USER is not",
        env={"CI_REGISTRY_USER": ""},
    ),
    Bad(
        "wrong-password",
        RUNTIME,
        "authentication failed",
        env={"CI_REGISTRY_PASSWORD": "wrong-password-4711"},
    ),
    Bad(
        "wrong-user",
        RUNTIME,
        "authentication failed",
        env={"CI_REGISTRY_USER": "nobody"},
    ),
    Bad(
        "no-credentials-at-all",
        RUNTIME,
        "authentication failed",
        env={"CI_REGISTRY_USER": None, "CI_REGISTRY_PASSWORD": None},
    ),
    Bad(
        "plain-http-without-tls-disabled",
        RUNTIME,
        "--tls disabled",
        env={"REGISTRY_CLEANUP_TLS": "enabled"},
    ),
]


def test_the_catalogue_is_big_enough() -> None:
    assert len(CATALOGUE) >= 40
    assert len({case.id for case in CATALOGUE}) == len(CATALOGUE)


@pytest.fixture
def seeded(registry: LocalRegistry, pushed_once: PushedOnce) -> dict[str, str]:
    return pushed_once(registry, seed)


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host, lifetime=300) as running:
        yield running


def _invocation(
    case: Bad, registry: LocalRegistry, proxy: FaultProxy, tmp_path: Path
) -> tuple[list[str], dict[str, str], str | None]:
    """The case's arguments, environment (a branch job's, changed as the case says) and stdin."""
    not_pem = tmp_path / "not-a-certificate.pem"
    not_pem.write_text("hello, I am not a certificate\n")
    empty = tmp_path / "empty-directory"
    empty.mkdir()
    values = {
        "host": proxy.host,
        "password": registry.password,
        "not_pem": str(not_pem),
        "empty": str(empty),
    }
    env: dict[str, str] = job_env(registry, proxy)
    for name, value in case.env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = _fill(value, values)
    args = [_fill(arg, values) for arg in case.args]
    stdin = _fill(case.stdin, values) if case.stdin is not None else None
    return args, env, stdin


def _refused_in_one_line(result: CliResult, case: Bad, registry: LocalRegistry) -> None:
    assert result.returncode == case.code, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert case.says in result.stderr
    assert registry.password not in result.output


@pytest.fixture
def no_registry(tmp_path: Path) -> Iterator[tuple[LocalRegistry, FaultProxy]]:
    """A registry's address and credentials, never started, behind a proxy that counts every
    request: a case refused before any request needs no registry to prove it."""
    registry = LocalRegistry(tmp_path / "never-started")
    with FaultProxy(registry.host, lifetime=300) as running:
        yield registry, running


@pytest.mark.parametrize(
    "case", [c for c in CATALOGUE if c.code == INPUT], ids=lambda case: case.id
)
def test_bad_input_is_refused_with_one_line_before_any_request(
    no_registry: tuple[LocalRegistry, FaultProxy], tmp_path: Path, case: Bad
) -> None:
    """Exit 2: the input is wrong and nothing was tried. In this process (tests/support/
    in_process.py): no registry and no process start needed."""
    registry, proxy = no_registry
    args, env, stdin = _invocation(case, registry, proxy, tmp_path)

    result = run_in_process("delete", *args, env=env, stdin=stdin)

    _refused_in_one_line(result, case, registry)
    assert proxy.seen() == [], "an input error must be found before any request"


@pytest.mark.parametrize(
    "case", [c for c in CATALOGUE if c.code == RUNTIME], ids=lambda case: case.id
)
def test_bad_input_found_while_acting_fails_in_one_line_and_changes_nothing(
    run_cli: RunCli,
    registry: LocalRegistry,
    seeded: dict[str, str],
    proxy: FaultProxy,
    tmp_path: Path,
    case: Bad,
) -> None:
    """Exit 1: found wrong by the registry, as a user's process would see it."""
    args, env, stdin = _invocation(case, registry, proxy, tmp_path)
    before = state(registry)

    result = run_cli("delete", *args, env=env, stdin=stdin)

    _refused_in_one_line(result, case, registry)
    assert proxy.changes() == []
    assert state(registry) == before


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


# -- a registry with a certificate from a private CA ----------------------------------------


@pytest.fixture
def tls_registry(
    tmp_path: Path, registry_flavour: FlavourName, registry_binary: str
) -> Iterator[LocalRegistry]:
    files = make_tls_files(tmp_path / "tls")
    with LocalRegistry(tmp_path / "tls-registry", tls=files, flavour=registry_flavour) as running:
        yield running


@pytest.fixture
def tls_proxy(tls_registry: LocalRegistry) -> Iterator[FaultProxy]:
    """TLS on both sides, with the registry's own certificate, so the client sees no change."""
    assert tls_registry.tls is not None
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tls_registry.tls.certificate, tls_registry.tls.key)
    upstream = ssl.create_default_context(cafile=str(tls_registry.tls.ca))
    with FaultProxy(
        tls_registry.host, server_tls=server, upstream_tls=upstream, lifetime=300
    ) as running:
        yield running


@pytest.fixture
def tls_seeded(tls_registry: LocalRegistry, regctl_binary: str) -> dict[str, str]:
    with ImagePusher(tls_registry, regctl_binary) as images:
        return seed(images)


def _tls_env(registry: LocalRegistry, proxy: FaultProxy, **extra: str) -> dict[str, str]:
    """No TLS setting at all: verification must be on by default."""
    env = job_env(registry, proxy, **extra)
    del env["REGISTRY_CLEANUP_TLS"]
    return env


def test_self_signed_registry_without_ca_file_is_refused_before_any_request(
    run_cli: RunCli, tls_registry: LocalRegistry, tls_proxy: FaultProxy, tls_seeded: dict[str, str]
) -> None:
    before = state(tls_registry)

    result = run_cli("delete", env=_tls_env(tls_registry, tls_proxy))

    assert result.returncode == 1, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "certificate was not accepted; pass --ca-file" in result.stderr
    assert tls_proxy.seen() == []  # the handshake failed: not one HTTP request was sent
    assert state(tls_registry) == before


def test_self_signed_registry_with_ca_file_deletes(
    run_cli: RunCli, tls_registry: LocalRegistry, tls_proxy: FaultProxy, tls_seeded: dict[str, str]
) -> None:
    assert tls_registry.tls is not None
    env = _tls_env(tls_registry, tls_proxy, REGISTRY_CLEANUP_CA_FILE=str(tls_registry.tls.ca))

    result = run_cli("delete", env=env)

    assert result.returncode == 0, result.output
    assert result.stdout.startswith("deleted: ")
    assert result.stderr == ""  # verification on: nothing to warn about
    assert TARGET not in tls_registry.tags(REPO)
    assert tls_registry.digest(REPO, "pinned") == tls_seeded[TARGET]


def test_turning_verification_off_is_explicit_and_logged(
    run_cli: RunCli, tls_registry: LocalRegistry, tls_proxy: FaultProxy, tls_seeded: dict[str, str]
) -> None:
    result = run_cli("delete", "--tls", "insecure", env=_tls_env(tls_registry, tls_proxy))

    assert result.returncode == 0, result.output
    assert result.stderr.splitlines() == [
        f"registry-cleanup: notice: TLS certificate verification is off for {tls_proxy.host} "
        "(--tls insecure)"
    ]
    assert TARGET not in tls_registry.tags(REPO)


def test_plain_http_to_a_tls_registry_fails_without_changes(
    run_cli: RunCli, tls_registry: LocalRegistry, tls_proxy: FaultProxy, tls_seeded: dict[str, str]
) -> None:
    before = state(tls_registry)

    result = run_cli("delete", "--tls", "disabled", env=_tls_env(tls_registry, tls_proxy))

    assert result.returncode == 1, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert tls_proxy.changes() == []
    assert state(tls_registry) == before
