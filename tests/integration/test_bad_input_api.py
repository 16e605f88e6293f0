"""Bad input for the GitLab API commands (sweep, policy, bulk-delete, delete-repository,
delete --via api), against the GitLab emulator behind the counting proxy.

Exit 2 means nothing was attempted: the proxy saw no request at all. Exit 1 means GitLab said
no: no request that could change anything succeeded, and the registry is as it was. Either way
exactly one line on stderr, and no token in it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry, free_port
from tests.conftest import CliResult, RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.support.fault_proxy import FaultProxy
from tests.support.in_process import run_in_process
from tests.support.scenario import REPO, state

INPUT = 2
REFUSED = 1


@dataclass(frozen=True)
class Bad:
    id: str
    code: int
    says: str
    args: tuple[str, ...]
    # Overrides of the environment; None removes a variable. {dev}/{job}: tokens of that kind.
    env: dict[str, str | None] = field(default_factory=dict)
    # The input can only be judged after reading from GitLab (a repository's name).
    reads: bool = False


CATALOGUE = [
    # -- where and as whom ---------------------------------------------------------------
    Bad("no-api-url", INPUT, "no GitLab API URL", ("sweep",), {"CI_API_V4_URL": None}),
    Bad(
        "api-url-without-v4", INPUT, "must end with /api/v4", ("sweep", "--api-url", "http://x/api")
    ),
    Bad("api-url-scheme", INPUT, "must start with http", ("sweep", "--api-url", "ftp://x/api/v4")),
    Bad("no-project", INPUT, "no project", ("sweep",), {"CI_PROJECT_ID": None}),
    Bad("no-token", INPUT, "no GitLab token", ("sweep",), {"GITLAB_TOKEN": None}),
    Bad("empty-token", INPUT, "no GitLab token", ("sweep",), {"GITLAB_TOKEN": ""}),
    Bad(
        "delete-via-api-without-token",
        INPUT,
        "no GitLab token",
        ("delete", "--via", "api"),
        {"GITLAB_TOKEN": None, "CI_COMMIT_REF_SLUG": "gone"},
    ),
    # -- durations, counts, choices ------------------------------------------------------
    Bad("older-than-unit", INPUT, "not a duration", ("sweep", "--older-than", "5x")),
    Bad("older-than-negative", INPUT, "not a duration", ("sweep", "--older-than", "-1d")),
    Bad("min-age-word", INPUT, "not a duration", ("sweep", "--min-age", "soon")),
    Bad("keep-n-negative", INPUT, "--keep-n", ("sweep", "--keep-n", "-3")),
    Bad("keep-n-word", INPUT, "--keep-n", ("sweep", "--keep-n", "many")),
    Bad("concurrency-zero", INPUT, "--concurrency", ("sweep", "--concurrency", "0")),
    Bad("concurrency-too-many", INPUT, "--concurrency", ("sweep", "--concurrency", "33")),
    Bad("via-unknown", INPUT, "--via", ("sweep", "--via", "ftp")),
    Bad("dry-run-not-boolean", INPUT, "--dry-run", ("sweep",), {"REGISTRY_CLEANUP_DRY_RUN": "x"}),
    Bad(
        "via-registry-without-registry", INPUT, "needs CI_REGISTRY", ("sweep", "--via", "registry")
    ),
    Bad("sizes-without-registry", INPUT, "--sizes (it reads", ("sweep", "--sizes")),
    # -- patterns (RE2) --------------------------------------------------------------------
    Bad("include-unbalanced", INPUT, "RE2", ("sweep", "--include", "(")),
    Bad("exclude-lookbehind", INPUT, "RE2", ("sweep", "--exclude", "(?<=a)b")),
    Bad("protect-backreference", INPUT, "RE2", ("sweep", "--protect", r"(a)\1")),
    Bad("bulk-regex-unbalanced", INPUT, "RE2", ("bulk-delete", "--name-regex-delete", "(")),
    Bad("policy-lookahead", INPUT, "RE2", ("policy", "set", "--name-regex", "(?=x)")),
    # -- GitLab's fixed policy values ----------------------------------------------------
    Bad("policy-cadence", INPUT, "--cadence", ("policy", "set", "--cadence", "2d")),
    Bad("policy-keep-n", INPUT, "--keep-n", ("policy", "set", "--keep-n", "7")),
    Bad("policy-older-than", INPUT, "--older-than", ("policy", "set", "--older-than", "1d")),
    Bad(
        "bulk-keep-n-negative",
        INPUT,
        "--keep-n",
        ("bulk-delete", "--name-regex-delete", ".*", "--keep-n", "-1"),
    ),
    Bad(
        "bulk-older-than-word",
        INPUT,
        "not a duration",
        ("bulk-delete", "--name-regex-delete", ".*", "--older-than", "yesterday"),
    ),
    Bad("repository-delete-unconfirmed", INPUT, "pass --yes", ("delete-repository",), reads=True),
    Bad(
        "unknown-repository",
        INPUT,
        "not a container repository",
        ("sweep", "--repository", "x/y"),
        reads=True,
    ),
    # -- wrong tokens and roles: GitLab refuses, nothing changes -----------------------------
    Bad("wrong-token", REFUSED, "rejected", ("sweep", "--delete"), {"GITLAB_TOKEN": "glpat-no"}),
    Bad(
        "job-token-as-access-token",
        REFUSED,
        "rejected",
        ("sweep", "--delete"),
        {"GITLAB_TOKEN": "{job}"},
    ),
    Bad("unknown-project", REFUSED, "404", ("sweep", "--delete", "--project", "999")),
    Bad(
        "policy-as-developer",
        REFUSED,
        "Maintainer",
        ("policy", "set", "--cadence", "7d"),
        {"GITLAB_TOKEN": "{dev}"},
    ),
    Bad(
        "policy-with-job-token",
        REFUSED,
        "job token",
        ("policy", "set", "--cadence", "7d"),
        {"GITLAB_TOKEN": None, "CI_JOB_TOKEN": "{job}"},
    ),
    Bad(
        "bulk-delete-as-developer",
        REFUSED,
        "Maintainer",
        ("bulk-delete", "--name-regex-delete", ".*"),
        {"GITLAB_TOKEN": "{dev}"},
    ),
    Bad(
        "repository-delete-as-developer",
        REFUSED,
        "Maintainer",
        ("delete-repository", "--yes"),
        {"GITLAB_TOKEN": "{dev}"},
    ),
]


def test_the_catalogue_is_big_enough() -> None:
    assert len(CATALOGUE) >= 30
    assert len({case.id for case in CATALOGUE}) == len(CATALOGUE)


@pytest.fixture
def project(gitlab_emulator: GitLabEmulator, pusher: ImagePusher) -> Project:
    created = gitlab_emulator.add_project(REPO, default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(created)
    for tag in ("main", "gone", "latest"):
        pusher.push(REPO, tag)
    return created


@pytest.fixture
def proxy(gitlab_emulator: GitLabEmulator) -> Iterator[FaultProxy]:
    with FaultProxy(gitlab_emulator.url.split("/")[2], lifetime=300) as running:
        yield running


def _environment(
    case: Bad, api_host: str, project_id: int, registry_host: str, tokens: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The case's arguments and environment: a Maintainer's access token by default."""
    env: dict[str, str] = {
        "CI_API_V4_URL": f"http://{api_host}/api/v4",
        "CI_PROJECT_ID": str(project_id),
        "GITLAB_TOKEN": tokens["maintainer"],
        "CI_REGISTRY_IMAGE": f"{registry_host}/{REPO}",
        "CI_DEFAULT_BRANCH": "main",
    }
    for name, value in case.env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = tokens.get(value, value)
    args = list(case.args)
    if args[0] in ("bulk-delete", "delete-repository"):
        args += ["--repository", REPO]
    return args, env


def _refused_in_one_line(result: CliResult, case: Bad, tokens: dict[str, str]) -> None:
    assert result.returncode == case.code, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert case.says in result.stderr
    for secret in tokens.values():
        assert secret not in result.output


@pytest.mark.parametrize(
    "case",
    [c for c in CATALOGUE if c.code == INPUT and not c.reads],
    ids=lambda case: case.id,
)
def test_bad_api_input_is_refused_with_one_line_before_any_request(case: Bad) -> None:
    """Exit 2 before reading anything: in this process (tests/support/in_process.py), with a
    proxy that counts every request and nothing behind it."""
    tokens = {
        "maintainer": f"glpat-{secrets.token_urlsafe(15)}",
        "{dev}": f"glpat-{secrets.token_urlsafe(15)}",
        "{job}": f"glcbt-{secrets.token_urlsafe(15)}",
    }
    with FaultProxy(f"127.0.0.1:{free_port()}", lifetime=300) as proxy:
        args, env = _environment(case, proxy.host, 42, f"127.0.0.1:{free_port()}", tokens)

        result = run_in_process(*args, env=env, stdin="")

        _refused_in_one_line(result, case, tokens)
        assert proxy.seen() == [], "an input error must be found before any request"


@pytest.mark.parametrize(
    "case", [c for c in CATALOGUE if c.code != INPUT or c.reads], ids=lambda case: case.id
)
def test_bad_api_input_is_refused_with_one_line_and_changes_nothing(
    run_cli: RunCli,
    gitlab_emulator: GitLabEmulator,
    registry: LocalRegistry,
    project: Project,
    proxy: FaultProxy,
    case: Bad,
) -> None:
    """Input judged after reading from GitLab, and GitLab's refusals: a user's process."""
    tokens = {
        "maintainer": gitlab_emulator.personal_token(project, Role.maintainer),
        "{dev}": gitlab_emulator.personal_token(project, Role.developer),
        "{job}": gitlab_emulator.job_token(project, Role.developer),
    }
    args, env = _environment(case, proxy.host, project.id, registry.host, tokens)
    before = state(registry)
    policy_before = gitlab_emulator.projects[project.id].__dict__.copy()

    result = run_cli(*args, env=env, stdin="")

    _refused_in_one_line(result, case, tokens)
    assert proxy.changes() == [] or case.code != INPUT
    succeeded = [s for s in proxy.changes() if s.status is not None and s.status < 400]
    assert succeeded == []
    assert state(registry) == before
    assert gitlab_emulator.projects[project.id].__dict__ == policy_before
