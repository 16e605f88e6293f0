"""`registry-cleanup delete` end to end: the real command, regctl and a real registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from tests.conftest import PushedOnce, RunCli, ci_env
from tests.support.fault_proxy import FaultProxy

# Registry behaviour: on distribution 2.8 (regctl's placeholder path) and v3 (DELETE by tag).
pytestmark = pytest.mark.both_registries

REPO = "group/app"


def branch_env(registry: LocalRegistry, branch: str, **extra: str) -> dict[str, str]:
    """A branch pipeline's variables, without CI_COMMIT_REF_SLUG so the slug rule is used."""
    return ci_env(registry, CI_COMMIT_REF_NAME=branch, CI_COMMIT_BRANCH=branch, **extra)


def _seed(pusher: ImagePusher) -> dict[str, str]:
    """main, a feature branch, a second tag on the feature's digest, a release and latest."""
    digests = {
        "main": pusher.push(REPO, "main"),
        "feature-login": pusher.push(REPO, "feature-login"),
        "v1.2.3": pusher.push(REPO, "v1.2.3"),
        "latest": pusher.push(REPO, "latest"),
    }
    digests["pinned-copy"] = pusher.tag(REPO, "feature-login", "pinned-copy")
    return digests


@pytest.fixture
def seeded(registry: LocalRegistry, pushed_once: PushedOnce) -> dict[str, str]:
    return pushed_once(registry, _seed)


def test_deletes_the_branch_tag_and_keeps_the_tag_sharing_its_digest(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    result = run_cli("delete", env=branch_env(registry, "Feature/Login"))

    assert result.returncode == 0, result.output
    assert result.stdout.startswith("deleted: ")
    assert seeded["feature-login"] in result.stdout
    assert registry.tags(REPO) == ["latest", "main", "pinned-copy", "v1.2.3"]
    assert registry.digest(REPO, "pinned-copy") == seeded["feature-login"]
    assert registry.digest(REPO, "main") == seeded["main"]


def test_the_registry_itself_deletes_by_tag_only_on_v3(
    registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    """The fact the two flavours differ in, asked of the registry directly, without regctl."""
    status, _, body = registry.request("DELETE", f"/v2/{REPO}/manifests/feature-login")

    if registry.deletes_by_tag:
        assert status == 202, body
        assert registry.tags(REPO) == ["latest", "main", "pinned-copy", "v1.2.3"]
    else:
        assert status == 400, body
        assert json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"
        assert "feature-login" in registry.tags(REPO)
    # Either way the other tag on the same digest, and its manifest, are still there.
    assert registry.digest(REPO, "pinned-copy") == seeded["feature-login"]


def _requests_that_change(proxy: FaultProxy) -> list[tuple[str, str, int | None]]:
    """(method, path, status) of every changing request, digests written as <digest>.

    401 answers are left out: an auth challenge that regctl answers by sending it again.
    """
    return [
        (seen.method, re.sub(r"sha256:[0-9a-f]{64}", "<digest>", seen.target), seen.status)
        for seen in proxy.changes()
        if seen.status != 401
    ]


def test_regctl_deletes_in_one_request_on_v3_and_by_placeholder_on_2_8(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    with FaultProxy(registry.host, lifetime=60) as proxy:
        env = branch_env(
            registry,
            "feature-login",
            CI_REGISTRY=proxy.host,
            CI_REGISTRY_IMAGE=f"{proxy.host}/{REPO}",
        )
        result = run_cli("delete", "--json", env=env)
        changes = _requests_that_change(proxy)

    assert result.returncode == 0, result.output
    assert json.loads(result.stdout)["status"] == "deleted"
    by_tag = f"/v2/{REPO}/manifests/feature-login"
    if registry.deletes_by_tag:
        # regctl's one-request path: exactly one DELETE by tag, no placeholder pushed.
        assert changes == [("DELETE", by_tag, 202)]
    else:
        # Refused by tag; then a placeholder manifest pushed to the tag and deleted by digest.
        assert changes[0] == ("DELETE", by_tag, 400), changes
        assert ("PUT", by_tag, 201) in changes, changes
        assert changes[-1] == ("DELETE", f"/v2/{REPO}/manifests/<digest>", 202), changes
    assert registry.tags(REPO) == ["latest", "main", "pinned-copy", "v1.2.3"]
    assert registry.digest(REPO, "pinned-copy") == seeded["feature-login"]


def test_deletes_a_multi_platform_index_tag(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher
) -> None:
    index_digest = pusher.push(REPO, "multi-arch", multi_platform=True)
    pusher.push(REPO, "main")

    result = run_cli("delete", "--json", env=branch_env(registry, "multi-arch"))

    assert result.returncode == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "deleted"
    assert document["digest"] == index_digest
    assert registry.tags(REPO) == ["main"]


def test_second_run_finds_the_tag_absent(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    env = branch_env(registry, "feature-login")
    assert run_cli("delete", env=env).returncode == 0

    again = run_cli("delete", "--json", env=env)

    assert again.returncode == 0, again.output
    assert json.loads(again.stdout) == {
        "ref": f"{registry.host}/{REPO}:feature-login",
        "tag": "feature-login",
        "digest": None,
        "status": "absent",
        "reason": "the tag does not exist; nothing to delete",
    }


@pytest.mark.parametrize(
    ("env_extra", "args", "tag", "reason"),
    [
        ({"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main"}, (), "main", "default branch"),
        (
            {"CI_COMMIT_REF_SLUG": "feature-login", "CI_COMMIT_BRANCH": "main"},
            (),
            "feature-login",
            "default branch",
        ),
        ({"CI_COMMIT_REF_NAME": "feature"}, ("{host}/group/app:main",), "main", "default branch"),
        (
            {"CI_COMMIT_REF_NAME": "feature"},
            ("{host}/group/app:latest",),
            "latest",
            "always protected",
        ),
        (
            {"CI_COMMIT_REF_NAME": "v1.2.3"},
            ("{host}/group/app:v1.2.3",),
            "v1.2.3",
            "release version",
        ),
        (
            {"CI_COMMIT_REF_NAME": "feature-login"},
            ("--protect", "feature-.*"),
            "feature-login",
            "protected pattern",
        ),
        (
            {"CI_COMMIT_REF_NAME": "feature-login", "REGISTRY_CLEANUP_PROTECT": "x-.* feature-.*"},
            (),
            "feature-login",
            "protected pattern",
        ),
    ],
)
def test_protected_tags_are_skipped_and_untouched(
    run_cli: RunCli,
    registry: LocalRegistry,
    seeded: dict[str, str],
    env_extra: dict[str, str],
    args: tuple[str, ...],
    tag: str,
    reason: str,
) -> None:
    before = {t: registry.digest(REPO, t) for t in registry.tags(REPO)}
    argv = [a.format(host=registry.host) for a in args]

    result = run_cli("delete", "--json", *argv, env=ci_env(registry, **env_extra))

    assert result.returncode == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "skipped"
    assert document["tag"] == tag
    assert reason in document["reason"]
    assert {t: registry.digest(REPO, t) for t in registry.tags(REPO)} == before


@pytest.mark.parametrize(
    ("env_extra", "args", "named"),
    [
        ({"CI_COMMIT_REF_NAME": "---"}, (), "empty slug"),
        ({"CI_COMMIT_REF_SLUG": ""}, (), "CI_COMMIT_REF_SLUG and CI_COMMIT_REF_NAME are unset"),
        ({"CI_COMMIT_REF_NAME": "x", "CI_REGISTRY_IMAGE": ""}, (), "CI_REGISTRY_IMAGE is unset"),
        ({}, ("{host}/group/app:",), "empty tag"),
        ({}, ("{host}/group/app",), "has no tag"),
        ({"CI_COMMIT_REF_NAME": "x"}, ("--expect-digest", "sha256:abc"), "--expect-digest"),
        ({"CI_COMMIT_REF_NAME": "x"}, ("--protect", "("), "--protect"),
        ({"CI_COMMIT_REF_NAME": "x"}, ("--tls", "maybe"), "--tls"),
        (
            {"CI_COMMIT_REF_NAME": "x", "CI_REGISTRY": "elsewhere.example.com"},
            (),
            "pass --registry",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_deletes_nothing(
    run_cli: RunCli,
    registry: LocalRegistry,
    seeded: dict[str, str],
    env_extra: dict[str, str],
    args: tuple[str, ...],
    named: str,
) -> None:
    before = {t: registry.digest(REPO, t) for t in registry.tags(REPO)}
    argv = [a.format(host=registry.host) for a in args]

    result = run_cli("delete", *argv, env=ci_env(registry, **env_extra))

    assert result.returncode == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert named in result.stderr
    assert {t: registry.digest(REPO, t) for t in registry.tags(REPO)} == before


def test_registry_refusing_deletes_leaves_the_tag_at_its_original_digest(
    run_cli: RunCli, registry_no_deletes: LocalRegistry, regctl_binary: str
) -> None:
    registry = registry_no_deletes
    with ImagePusher(registry, regctl_binary) as images:
        original = images.push(REPO, "feature-x")
        images.tag(REPO, "feature-x", "sibling")

    result = run_cli("delete", "--json", env=branch_env(registry, "feature-x"))

    assert result.returncode == 1, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert "refuses deletes" in document["reason"]
    # regctl's fallback re-pointed the tag at a dummy manifest; we pointed it back.
    assert "restored" in document["reason"]
    assert registry.digest(REPO, "feature-x") == original
    assert registry.digest(REPO, "sibling") == original
    assert len(result.stderr.splitlines()) == 1


def test_wrong_password_fails_without_showing_it(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    wrong = "not-the-password-4711"
    env = branch_env(registry, "feature-login", CI_REGISTRY_PASSWORD=wrong)

    for verbosity in ((), ("-v",), ("-v", "--json")):
        result = run_cli("delete", *verbosity, env=env)
        assert result.returncode == 1, result.output
        assert "authentication failed" in result.stderr
        assert wrong not in result.output
    assert registry.digest(REPO, "feature-login") == seeded["feature-login"]


def test_password_from_stdin(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    env = branch_env(registry, "feature-login", CI_REGISTRY_PASSWORD="")
    result = run_cli(
        "delete",
        "--username",
        registry.username,
        "--password-stdin",
        env=env,
        stdin=registry.password + "\n",
    )
    assert result.returncode == 0, result.output
    assert "feature-login" not in registry.tags(REPO)


def test_expect_digest_mismatch_skips_and_match_deletes(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    env = branch_env(registry, "feature-login")
    stale = seeded["main"]

    skipped = run_cli("delete", "--json", "--expect-digest", stale, env=env)

    assert skipped.returncode == 0, skipped.output
    document = json.loads(skipped.stdout)
    assert document["status"] == "skipped"
    assert "newer pipeline" in document["reason"]
    assert registry.digest(REPO, "feature-login") == seeded["feature-login"]

    env["REGISTRY_CLEANUP_EXPECT_DIGEST"] = seeded["feature-login"]
    deleted = run_cli("delete", "--json", env=env)
    assert json.loads(deleted.stdout)["status"] == "deleted"
    assert "feature-login" not in registry.tags(REPO)


def test_empty_expected_digest_means_delete_by_tag(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    """The component passes an empty digest when the build's record has expired."""
    env = branch_env(registry, "feature-login", REGISTRY_CLEANUP_EXPECT_DIGEST="")
    result = run_cli("delete", env=env)
    assert result.returncode == 0, result.output
    assert "feature-login" not in registry.tags(REPO)


def test_dry_run_changes_nothing(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    before = {t: registry.digest(REPO, t) for t in registry.tags(REPO)}

    result = run_cli("delete", "--dry-run", env=branch_env(registry, "feature-login"))

    assert result.returncode == 0, result.output
    assert result.stdout.startswith("would-delete: ")
    assert {t: registry.digest(REPO, t) for t in registry.tags(REPO)} == before


def test_plain_http_registry_without_tls_disabled_says_what_to_do(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str]
) -> None:
    env = branch_env(registry, "feature-login", REGISTRY_CLEANUP_TLS="enabled")
    result = run_cli("delete", env=env)
    assert result.returncode == 1
    assert "--tls disabled" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert registry.digest(REPO, "feature-login") == seeded["feature-login"]


def test_unreachable_registry_is_a_runtime_failure(run_cli: RunCli, tmp_path: Path) -> None:
    env = {
        "CI_REGISTRY_IMAGE": "127.0.0.1:9/group/app",
        "CI_COMMIT_REF_NAME": "feature",
        "REGISTRY_CLEANUP_TLS": "disabled",
    }
    result = run_cli("delete", env=env)
    assert result.returncode == 1
    assert "could not be reached" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_private_regctl_config_is_removed_after_the_run(
    run_cli: RunCli, registry: LocalRegistry, seeded: dict[str, str], tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = branch_env(registry, "feature-login", TMPDIR=str(scratch))
    assert run_cli("delete", env=env).returncode == 0
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("via", ["registry", "api"])
def test_a_delete_that_cannot_reach_its_backend_still_reports(
    run_cli: RunCli, tmp_path: Path, via: str
) -> None:
    """One output for both ways in: with the registry (or GitLab) unreachable, --json prints
    the failed outcome and --report keeps it, as a stop job's artifact. `delete --via api`
    used to exit with neither."""
    report = tmp_path / "delete.json"
    env = {
        "CI_REGISTRY_IMAGE": "127.0.0.1:9/group/app",
        "CI_COMMIT_REF_NAME": "feature",
        "REGISTRY_CLEANUP_TLS": "disabled",
        "CI_API_V4_URL": "http://127.0.0.1:9/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_JOB_TOKEN": "job-token-for-nothing",
    }
    result = run_cli("delete", "--via", via, "--json", "--report", str(report), env=env)

    assert result.returncode == 1, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["ref"], shown["status"]) == ("127.0.0.1:9/group/app:feature", "failed")
    assert len(result.stderr.splitlines()) == 1
    assert shown["reason"] in result.stderr
    kept = json.loads(report.read_text())
    assert kept["kind"] == "delete"
    assert [(t["tag"], t["status"], t["reason"]) for t in kept["tags"]] == [
        ("feature", "failed", shown["reason"])
    ]
