"""Undo: `delete --report`, then `restore` against the real registry, regctl and the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from tests.conftest import RunCli, ci_env
from tests.fakes.fixtures import TokenAuth
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.support.registry_gc import garbage_collect

REPO = "group/app"
# Restoring pushes a manifest to a tag again: on distribution 2.8 (whose tag delete went through
# regctl's placeholder) and on v3 (DELETE by tag, as GitLab's registry).
pytestmark = pytest.mark.both_registries


def registry_env(registry: LocalRegistry, **extra: str) -> dict[str, str]:
    return ci_env(registry, **extra)


def delete_with_report(
    run_cli: RunCli, registry: LocalRegistry, tag: str, report: Path, *args: str
) -> dict[str, object]:
    result = run_cli(
        "delete",
        f"{registry.host}/{REPO}:{tag}",
        "--report",
        str(report),
        *args,
        env=registry_env(registry),
    )
    assert result.returncode == 0, result.output
    document: dict[str, object] = json.loads(report.read_text())
    return document


def test_delete_report_records_what_restore_needs_and_restore_undoes_it(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, tmp_path: Path
) -> None:
    digest = pusher.push(REPO, "feature-login")
    pusher.push(REPO, "main")
    report = tmp_path / "artifacts" / "registry-cleanup-delete.json"

    document = delete_with_report(run_cli, registry, "feature-login", report)

    assert document["kind"] == "delete"
    assert document["registry"] == registry.host
    assert document["repository"] == f"{registry.host}/{REPO}"
    assert str(document["generated_at"]).endswith("+00:00")
    assert document["tags"] == [
        {
            "repository": f"{registry.host}/{REPO}",
            "tag": "feature-login",
            "status": "deleted",
            "reason": "tag deleted; other tags on the same digest are untouched",
            "digest": digest,
        }
    ]
    assert registry.tags(REPO) == ["main"]

    restored = run_cli("restore", "--report", str(report), env=registry_env(registry))

    assert restored.returncode == 0, restored.output
    assert restored.stdout == (
        f"restored: {registry.host}/{REPO}:feature-login ({digest}): "
        "the tag points at its recorded digest again\n"
    )
    assert registry.digest(REPO, "feature-login") == digest
    assert registry.password not in restored.output

    again = run_cli("restore", "--report", str(report), env=registry_env(registry))

    assert again.returncode == 0, again.output
    assert again.stdout.startswith(f"already-restored: {registry.host}/{REPO}:feature-login")
    assert registry.digest(REPO, "feature-login") == digest


def test_restore_reads_the_json_that_delete_prints(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, tmp_path: Path
) -> None:
    digest = pusher.push(REPO, "feature-x", multi_platform=True)
    deleted = run_cli("delete", f"{registry.host}/{REPO}:feature-x", "--json", env=ci_env(registry))
    assert deleted.returncode == 0, deleted.output
    saved = tmp_path / "delete.json"
    saved.write_text(deleted.stdout)
    assert registry.tags(REPO) == []

    restored = run_cli("restore", "--report", str(saved), "--json", env=ci_env(registry))

    assert restored.returncode == 0, restored.output
    document = json.loads(restored.stdout)
    assert document["kind"] == "restore"
    assert document["summary"]["restored"] == 1
    assert document["tags"][0]["status"] == "restored"
    assert registry.digest(REPO, "feature-x") == digest


def test_delete_report_is_written_when_the_delete_fails(
    run_cli: RunCli, registry_no_deletes: LocalRegistry, regctl_binary: str, tmp_path: Path
) -> None:
    with ImagePusher(registry_no_deletes, regctl_binary) as pusher:
        digest = pusher.push(REPO, "feature-y")
    report = tmp_path / "report.json"

    result = run_cli(
        "delete",
        f"{registry_no_deletes.host}/{REPO}:feature-y",
        "--report",
        str(report),
        env=ci_env(registry_no_deletes),
    )

    assert result.returncode == 1
    entry = json.loads(report.read_text())["tags"][0]
    assert entry["status"] == "failed"
    assert entry["digest"] == digest
    # Nothing was deleted, so there is nothing for restore to do.
    restored = run_cli("restore", "--report", str(report), env=ci_env(registry_no_deletes))
    assert restored.returncode == 0, restored.output
    assert "the report records no deleted tag" in restored.stderr


def test_dry_run_says_what_would_be_restored_and_changes_nothing(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, tmp_path: Path
) -> None:
    digest = pusher.push(REPO, "feature-z")
    report = tmp_path / "report.json"
    delete_with_report(run_cli, registry, "feature-z", report)

    dry = run_cli("restore", "--report", str(report), "--dry-run", env=ci_env(registry))

    assert dry.returncode == 0, dry.output
    assert dry.stdout.startswith(f"would-restore: {registry.host}/{REPO}:feature-z ({digest})")
    assert registry.tags(REPO) == []


def test_a_tag_pushed_again_is_left_alone_and_reported(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, tmp_path: Path
) -> None:
    old = pusher.push(REPO, "feature-a")
    report = tmp_path / "report.json"
    delete_with_report(run_cli, registry, "feature-a", report)
    newer = pusher.push(REPO, "feature-a", seed="a newer pipeline")

    result = run_cli("restore", "--report", str(report), env=ci_env(registry))

    assert result.returncode == 1
    assert result.stdout.startswith(f"left-alone: {registry.host}/{REPO}:feature-a ({old})")
    assert f"points at {newer}" in result.stdout
    assert registry.digest(REPO, "feature-a") == newer


def test_garbage_collected_image_says_rebuild_and_the_rest_is_restored(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, tmp_path: Path
) -> None:
    collected = pusher.push(REPO, "feature-gone")
    shared = pusher.push(REPO, "release-keep")
    pusher.tag(REPO, "release-keep", "feature-shared")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    delete_with_report(run_cli, registry, "feature-gone", first)
    delete_with_report(run_cli, registry, "feature-shared", second)
    assert registry.manifest_exists(REPO, collected)

    garbage_collect(registry)

    # The collector removed the untagged image; the one another tag holds survives.
    assert not registry.manifest_exists(REPO, collected)
    assert registry.manifest_exists(REPO, shared)
    gone = run_cli("restore", "--report", str(first), env=ci_env(registry))
    kept = run_cli("restore", "--report", str(second), env=ci_env(registry))

    assert gone.returncode == 1
    assert gone.stdout == (
        f"garbage-collected: {registry.host}/{REPO}:feature-gone ({collected}): "
        "the registry no longer holds this image; rebuild and push it\n"
    )
    assert "feature-gone" not in registry.tags(REPO)
    assert kept.returncode == 0, kept.output
    assert registry.digest(REPO, "feature-shared") == shared


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read report"),
        ("{not json", "is not JSON (line 1"),
        ('{"hello": "world"}', "holds no deleted tags we can read"),
        ('{"tags": [{"status": "deleted", "tag": "a", "digest": "sha256:00"}]}', "no 'repository'"),
    ],
)
def test_a_bad_report_is_one_line_and_exit_2(
    run_cli: RunCli,
    registry: LocalRegistry,
    pusher: ImagePusher,
    tmp_path: Path,
    content: str | None,
    expected: str,
) -> None:
    pusher.push(REPO, "main")
    report = tmp_path / "report.json"
    if content is not None:
        report.write_text(content)

    result = run_cli("restore", "--report", str(report), env=ci_env(registry))

    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""
    assert registry.tags(REPO) == ["main"]


def test_unknown_tag_and_bad_digest_are_input_errors_a_missing_digest_fails(
    run_cli: RunCli, registry: LocalRegistry, pusher: ImagePusher, tmp_path: Path
) -> None:
    pusher.push(REPO, "feature-b")
    report = tmp_path / "report.json"
    delete_with_report(run_cli, registry, "feature-b", report)

    unknown = run_cli("restore", "--report", str(report), "--tag", "nope", env=ci_env(registry))
    document = json.loads(report.read_text())
    document["tags"][0]["digest"] = "sha256:abc"
    report.write_text(json.dumps(document))
    bad_digest = run_cli("restore", "--report", str(report), env=ci_env(registry))
    document["tags"][0]["digest"] = None
    report.write_text(json.dumps(document))
    no_digest = run_cli("restore", "--report", str(report), env=ci_env(registry))

    assert unknown.returncode == 2
    assert "--tag nope: the report records no deleted tag of that name (deleted: feature-b)" in (
        unknown.stderr
    )
    assert bad_digest.returncode == 2
    assert "invalid digest 'sha256:abc'" in bad_digest.stderr
    # An entry without a digest fails on its own (exit 1); it cannot hide the others.
    assert no_digest.returncode == 1
    assert "records no digest for this tag" in no_digest.stdout
    assert registry.tags(REPO) == []


def seed_sweepable(emulator: GitLabEmulator, pusher: ImagePusher) -> tuple[Project, dict[str, str]]:
    project = emulator.add_project(REPO, default_branch="main", branches=["main", "feature/live"])
    emulator.add_repository(project)
    digests = {tag: pusher.push(REPO, tag) for tag in ("main", "feature-live", "gone-1", "gone-2")}
    digests["gone-3"] = pusher.tag(REPO, "feature-live", "gone-3")
    return project, digests


def test_restore_after_a_sweep_through_gitlabs_api(
    gitlab_emulator: GitLabEmulator,
    run_cli: RunCli,
    registry: LocalRegistry,
    pusher: ImagePusher,
    tmp_path: Path,
) -> None:
    project, digests = seed_sweepable(gitlab_emulator, pusher)
    token = gitlab_emulator.personal_token(project, Role.developer)
    report = tmp_path / "sweep.json"
    env = {"CI_API_V4_URL": gitlab_emulator.url, "CI_PROJECT_ID": str(project.id)}
    swept = run_cli(
        "sweep",
        "--delete",
        "--min-age",
        "0s",
        "--report",
        str(report),
        env={**env, "GITLAB_TOKEN": token},
    )
    assert swept.returncode == 0, swept.output
    assert registry.tags(REPO) == ["feature-live", "main"]

    only_one = run_cli("restore", "--report", str(report), "--tag", "gone-2", env=ci_env(registry))

    assert only_one.returncode == 0, only_one.output
    assert registry.tags(REPO) == ["feature-live", "gone-2", "main"]

    everything = run_cli("restore", "--report", str(report), "--json", env=ci_env(registry))

    assert everything.returncode == 0, everything.output
    summary = json.loads(everything.stdout)["summary"]
    assert summary["restored"] == 2
    assert summary["already-restored"] == 1
    for tag, digest in digests.items():
        assert registry.digest(REPO, tag) == digest, tag
    assert token not in everything.output + only_one.output


def test_restore_after_a_sweep_through_the_registry_with_a_job_token(
    token_auth: TokenAuth, run_cli: RunCli, tmp_path: Path
) -> None:
    emulator, registry = token_auth.emulator, token_auth.registry
    project, digests = seed_sweepable(emulator, token_auth.pusher)
    job_token = emulator.job_token(project, Role.developer)
    env = {
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": job_token,
        "REGISTRY_CLEANUP_TLS": "disabled",
        "CI_API_V4_URL": emulator.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_JOB_TOKEN": job_token,
    }
    report = tmp_path / "sweep.json"
    swept = run_cli(
        "sweep",
        "--delete",
        "--via",
        "registry",
        "--concurrency",
        "1",
        "--report",
        str(report),
        env=env,
    )
    assert swept.returncode == 0, swept.output
    assert registry.tags(REPO) == ["feature-live", "main"]

    restored = run_cli("restore", "--report", str(report), env=env)

    assert restored.returncode == 0, restored.output
    assert registry.tags(REPO) == sorted(digests)
    for tag, digest in digests.items():
        assert registry.digest(REPO, tag) == digest, tag
    assert job_token not in restored.output
