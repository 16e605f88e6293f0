"""The sweep against GitLab as its source says it behaves: git tags are live refs, signature
and attestation tags follow their subject, protected container tag rules match anywhere in the
tag for callers below the rule's level (CLI, python-gitlab, the emulator, the real registry)."""

from __future__ import annotations

import json

from devkit.images import ImagePusher
from devkit.seeding import seed_tags
from tests.conftest import RunCli
from tests.fakes.gitlab_emulator import GitLabEmulator, Role
from tests.integration.test_sweep import api_env

REPO = "group/app"
# No grace period: these tests are about names and digests, not ages.
SWEEP = ("sweep", "--min-age", "0m", "--json")


def attached(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + suffix


def statuses(document: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {t["tag"]: (t["status"], t["reason"]) for t in document["tags"]}  # type: ignore[attr-defined, index]


def test_the_image_of_a_live_git_tag_is_kept(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    gitlab_emulator.add_git_tag(project, "release/2024-03")
    for tag in ("main", "release-2024-03", "release-2023-01"):
        pusher.push(REPO, tag)
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    result = run_cli(*SWEEP, "--delete", env=env)

    assert result.returncode == 0, result.stderr
    tags = statuses(json.loads(result.stdout))
    assert tags["release-2024-03"] == ("kept", "git tag 'release/2024-03' still exists")
    assert tags["release-2023-01"][0] == "deleted"
    assert pusher.registry.tags(REPO) == ["main", "release-2024-03"]


def test_signatures_follow_their_subject(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    # GitLab.com's registry, with the metadata database: without it GitLab's REST tag detail
    # of a multi-platform index answers 500, and the delete's re-check fails (see the emulator).
    gitlab_emulator.metadata_database = True
    project = gitlab_emulator.add_project(REPO, branches=["main", "feature/live"])
    gitlab_emulator.add_repository(project)
    pusher.push(REPO, "main")
    # Multi-platform images: cosign signs the index digest, which is the tag's digest.
    live = pusher.push(REPO, "feature-live", multi_platform=True)
    gone = pusher.push(REPO, "feature-gone", multi_platform=True)
    pusher.tag(REPO, "feature-gone", "copy-of-gone")
    unknown = "sha256:" + "e" * 64
    for name in (
        attached(live, ".sig"),
        attached(live, ".att"),
        attached(gone, ".sig"),
        attached(gone, ".sbom"),
        attached(gone, ""),  # the OCI referrers tag schema's fallback tag
        attached(unknown, ".sig"),
    ):
        pusher.push(REPO, name)
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    dry = run_cli(*SWEEP, env=env)

    assert dry.returncode == 0, dry.stderr
    planned = statuses(json.loads(dry.stdout))
    assert planned[attached(live, ".sig")] == (
        "kept",
        f"belongs to {live}, which tag 'feature-live' keeps",
    )
    assert planned[attached(gone, ".sig")][0] == "would-delete"
    assert "'copy-of-gone', 'feature-gone'" in planned[attached(gone, ".sig")][1]
    assert planned[attached(unknown, ".sig")][0] == "kept"
    assert "signature/attestation tags belong to digests no tag points at" in dry.stderr
    assert attached(unknown, ".sig") in dry.stderr

    result = run_cli(*SWEEP, "--delete", env=env)

    assert result.returncode == 0, result.stdout
    assert pusher.registry.tags(REPO) == sorted(
        [
            "main",
            "feature-live",
            attached(live, ".sig"),
            attached(live, ".att"),
            attached(unknown, ".sig"),
        ]
    )


def test_a_signature_stays_when_its_subject_could_not_be_deleted(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """A Developer cannot read the protected tag rules, so the plan does not know 'frozen-1' is
    protected; GitLab refuses its delete (403), and its signature must stay with it."""
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    gitlab_emulator.add_tag_rule(project, "frozen-.*")
    pusher.push(REPO, "main")
    frozen = pusher.push(REPO, "frozen-1")
    pusher.push(REPO, attached(frozen, ".sig"))
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    result = run_cli(*SWEEP, "--delete", env=env)

    tags = statuses(json.loads(result.stdout))
    assert tags["frozen-1"] == ("skipped", "GitLab refused: protected container tag")
    assert tags[attached(frozen, ".sig")] == (
        "skipped",
        "kept: its subject's tag 'frozen-1' was not deleted",
    )
    assert pusher.registry.tags(REPO) == sorted(["main", "frozen-1", attached(frozen, ".sig")])


def test_the_dry_run_keeps_what_gitlabs_tag_rules_protect_anywhere_in_the_name(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    gitlab_emulator.add_tag_rule(project, "release")  # Maintainer may delete
    gitlab_emulator.add_tag_rule(project, "^hotfix", minimum_access_level_for_delete="owner")
    for tag in ("main", "pre-release-1", "hotfix-2", "old-hotfix", "feature-1"):
        pusher.push(REPO, tag)
    maintainer = gitlab_emulator.personal_token(project, Role.maintainer)
    owner = gitlab_emulator.personal_token(project, Role.owner)

    as_maintainer = run_cli(*SWEEP, env=api_env(gitlab_emulator, project, maintainer))
    as_owner = run_cli(*SWEEP, env=api_env(gitlab_emulator, project, owner))

    assert as_maintainer.returncode == 0, as_maintainer.stderr
    planned = statuses(json.loads(as_maintainer.stdout))
    assert planned["hotfix-2"] == ("kept", "protected by GitLab tag rule '^hotfix'")
    # A Maintainer is not below the 'release' rule's level: GitLab lets it delete.
    assert planned["pre-release-1"][0] == "would-delete"
    assert planned["old-hotfix"][0] == "would-delete"
    assert planned["feature-1"][0] == "would-delete"
    assert statuses(json.loads(as_owner.stdout))["hotfix-2"][0] == "would-delete"

    developer_rule_project = gitlab_emulator.add_project("group/other", branches=["main"])
    gitlab_emulator.add_repository(developer_rule_project)
    gitlab_emulator.add_tag_rule(
        developer_rule_project, "release", minimum_access_level_for_delete="owner"
    )
    pusher.push("group/other", "main")
    pusher.push("group/other", "pre-release-1")
    token = gitlab_emulator.personal_token(developer_rule_project, Role.maintainer)
    env = api_env(gitlab_emulator, developer_rule_project, token)
    kept = statuses(json.loads(run_cli(*SWEEP, "--delete", env=env).stdout))
    assert kept["pre-release-1"] == ("kept", "protected by GitLab tag rule 'release'")
    assert pusher.registry.tags("group/other") == ["main", "pre-release-1"]


def _plan_requests(emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, tags: int):
    """bench/plan_requests.py's set-up, small: N tags, N/5 branches owning a fifth of them."""
    branches = ["main"] + [f"feature-{n:06d}" for n in range(tags // 5 - 1)]
    every = branches + [f"gone-{n:06d}" for n in range(tags - len(branches))]
    seed_tags(pusher, REPO, every, images=10)
    project = emulator.add_project(REPO, branches=branches)
    emulator.add_repository(project)
    env = api_env(emulator, project, emulator.personal_token(project, Role.maintainer))
    result = run_cli("sweep", "--dry-run", "--older-than", "7d", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["tags"]) == tags  # every tag seen, none skipped
    return emulator.requests


def test_requests_to_plan_with_graphql_pages_of_20(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """The figures in bench/RESULTS.md section 2 are computed from these counts:
    1 repository list + the GraphQL pages + B/100 branch pages + 1 git tag page + 1 rule list.
    The pages: the first, then rounds of two (one from each end) until the two overlap:
    1 + 2 * (floor((N - 20) / 40) + 1), at most N/20 + 2 (15 for 260 tags: after 6 rounds the
    ends touch, 140 + 120, without overlapping). With the metadata database (GitLab.com),
    where asking for more than 20 skips tags."""
    gitlab_emulator.metadata_database = True
    counts = _plan_requests(gitlab_emulator, pusher, run_cli, 260)

    assert counts["GET /projects/:id/registry/repositories"] == 1
    assert counts["POST /api/graphql"] == 15  # 260 tags, 20 per page, from both ends
    assert gitlab_emulator.tag_sorts == {"NAME_ASC": 8, "NAME_DESC": 7}
    assert counts["GET /projects/:id/repository/branches"] == 1  # 52 branches
    assert counts["GET /projects/:id/repository/tags"] == 1
    assert counts["GET /projects/:id/registry/protection/tag/rules"] == 1
    assert counts["total"] == 19


def test_requests_to_plan_over_rest(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """Without GraphQL: one failed GraphQL try, the REST tag list (100 per page), and one detail
    request per orphaned tag."""
    gitlab_emulator.graphql_enabled = False
    counts = _plan_requests(gitlab_emulator, pusher, run_cli, 260)

    assert counts["POST /api/graphql"] == 1
    assert counts["GET /projects/:id/registry/repositories/:rid/tags"] == 3
    assert counts["GET /projects/:id/registry/repositories/:rid/tags/:tag"] == 208  # 4/5 of 260
    assert counts["total"] == 1 + 1 + 3 + 1 + 1 + 1 + 208


def test_nothing_is_deleted_when_the_git_tags_cannot_be_listed(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli
):
    """Without the git tags any orphan may be a tag pipeline's image. A 404 after the branches
    were listed is GitLab not taking the token there (a job token before 18.3), not 'no tags'."""
    project = gitlab_emulator.add_project(REPO, branches=["main"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "release-2024-03"):
        pusher.push(REPO, tag)
    env = api_env(gitlab_emulator, project, gitlab_emulator.personal_token(project, Role.developer))

    for status in (404, 403):
        gitlab_emulator.faults["GET /projects/:id/repository/tags"] = [status]
        result = run_cli(*SWEEP, "--delete", "--trust-branch-list", env=env)

        assert result.returncode == 1, result.stderr
        assert "refusing to delete" in result.stderr
        assert "git tag" in result.stderr
        document = json.loads(result.stdout)
        assert document["refused"] is True
        assert statuses(document)["release-2024-03"] == (
            "skipped",
            "no branch or git tag has this slug; refused: the git tags could not be listed",
        )
        assert pusher.registry.tags(REPO) == ["main", "release-2024-03"]
