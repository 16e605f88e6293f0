"""Images GitLab cannot date: what `docker buildx build --push` writes, an image index (the image
plus a provenance attestation, or several platforms each with one).

Without the registry metadata database GitLab dates a tag by its image config, which an index
does not have: GraphQL's createdAt is null, and the REST tag detail answers 500 (a registry that
serves the index whatever GitLab asks for: distribution v3 under the emulator) or "404 Tag Not
Found" (one that refuses it, as distribution 2.x does; registry_store.refuses_oci_index). The
sweep then reads the image's age from the registry: the newest of its platform images' configs,
attestations left out. With the database GitLab gives the push time and nothing is read.

Every test runs the sweep on distribution v3, with an access token (GraphQL) and a job token
(REST), through `sweep --delete`, `--plan-out` + `--apply`, and `--group`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import LocalRegistry
from devkit.seeding import seed_tags
from tests.conftest import RunCli, ci_env
from tests.fakes.gitlab_emulator import GitLabEmulator, Project, Role
from tests.fakes.registry_metadata import set_pushed_at

LIVE = ["main", "live-0", "live-1", "live-2", "live-3"]
NOW = datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Estate:
    project: Project
    repository: str
    old_digest: str


def _seed(emulator: GitLabEmulator, pusher: ImagePusher, repository: str) -> Estate:
    """Live branches' plain images, and three orphaned buildx images:

    - gone-old: one platform built 30 days ago, plus its attestation, and a cosign signature;
    - gone-multi: amd64 built 30 days ago, arm64 2 days ago (its age is the newest: 2 days);
    - gone-young: built a minute ago.

    The metadata database dates a tag by its push, which is set to the same moments."""
    project = emulator.add_project(repository, branches=list(LIVE))
    emulator.add_repository(project)
    seed_tags(pusher, repository, LIVE)
    old, recent, young = (
        NOW - timedelta(days=30),
        NOW - timedelta(days=2),
        NOW - timedelta(minutes=1),
    )
    old_digest = pusher.push_buildx(repository, "gone-old", {"amd64": _stamp(old)})
    pusher.push_buildx(repository, "gone-multi", {"amd64": _stamp(old), "arm64": _stamp(recent)})
    pusher.push_buildx(repository, "gone-young", {"amd64": _stamp(young)})
    signature = f"sha256-{old_digest.removeprefix('sha256:')}.sig"
    pusher.push(repository, signature, created=_stamp(old))
    pushed = {"gone-old": old, "gone-multi": recent, "gone-young": young, signature: old}
    for tag in LIVE:
        pushed[tag] = old
    for tag, moment in pushed.items():
        set_pushed_at(pusher.registry, repository, tag, moment)
    return Estate(project, repository, old_digest)


def _expect_swept(registry: LocalRegistry, estate: Estate) -> None:
    """Old enough and orphaned: gone, its signature with it; dated by its newest platform
    (two days, under --older-than 7d) or young: kept."""
    assert registry.tags(estate.repository) == sorted([*LIVE, "gone-multi", "gone-young"])


READINGS = ["index-served-500", "index-refused-404", "metadata-database"]


def _configure(emulator: GitLabEmulator, reading: str) -> None:
    emulator.metadata_database = reading == "metadata-database"
    emulator.store.refuses_oci_index = reading == "index-refused-404"


def _env(
    emulator: GitLabEmulator, registry: LocalRegistry, project: Project, graphql: bool
) -> dict[str, str]:
    env = ci_env(registry, CI_API_V4_URL=emulator.url, CI_PROJECT_ID=str(project.id))
    if graphql:
        env["GITLAB_TOKEN"] = emulator.personal_token(project, Role.developer)
    else:
        env["CI_JOB_TOKEN"] = emulator.job_token(project, Role.developer)
    return env


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("graphql", [True, False], ids=["access-token", "job-token"])
def test_sweep_dates_an_index_by_its_newest_platform_image(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    reading: str,
    graphql: bool,
) -> None:
    _configure(gitlab_emulator, reading)
    estate = _seed(gitlab_emulator, pusher, "group/app")
    env = _env(gitlab_emulator, pusher.registry, estate.project, graphql)

    result = run_cli("sweep", "--delete", "--older-than", "7d", "--json", env=env)

    assert result.returncode == 0, result.stderr
    _expect_swept(pusher.registry, estate)
    tags = {entry["tag"]: entry for entry in json.loads(result.stdout)["tags"]}
    assert tags["gone-old"]["status"] == "deleted"
    assert tags["gone-old"]["digest"] == estate.old_digest  # the index's: restore can undo it
    assert tags["gone-multi"]["reason"] == "newer than --older-than 7d", tags["gone-multi"]
    assert tags["gone-young"]["status"] == "kept"
    assert "age is unknown" not in result.stderr


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("graphql", [True, False], ids=["access-token", "job-token"])
def test_apply_deletes_the_planned_index(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    tmp_path: Path,
    reading: str,
    graphql: bool,
) -> None:
    _configure(gitlab_emulator, reading)
    estate = _seed(gitlab_emulator, pusher, "group/app")
    env = _env(gitlab_emulator, pusher.registry, estate.project, graphql)
    plan = tmp_path / "plan.json"

    made = run_cli("sweep", "--plan-out", str(plan), "--older-than", "7d", env=env)
    assert made.returncode == 0, made.stderr
    planned = {t["tag"]: t for t in json.loads(plan.read_text())["tags"]}
    assert planned["gone-old"]["status"] == "would-delete"
    assert planned["gone-old"]["digest"] == estate.old_digest
    applied = run_cli("sweep", "--apply", str(plan), env=env)

    assert applied.returncode == 0, applied.stderr
    _expect_swept(pusher.registry, estate)


@pytest.mark.parametrize("reading", READINGS)
def test_group_sweep_dates_an_index_by_its_newest_platform_image(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, reading: str
) -> None:
    """A group sweep takes an access token (the group API takes no job token); the registry
    login is the job's, as in a group's housekeeping pipeline."""
    _configure(gitlab_emulator, reading)
    group = gitlab_emulator.add_group("acme")
    estate = _seed(gitlab_emulator, pusher, "acme/app")
    env = ci_env(
        pusher.registry,
        CI_API_V4_URL=gitlab_emulator.url,
        GITLAB_TOKEN=gitlab_emulator.group_token(group, Role.maintainer),
    )

    result = run_cli("sweep", "--group", "acme", "--delete", "--older-than", "7d", env=env)

    assert result.returncode == 0, result.stderr
    _expect_swept(pusher.registry, estate)


@pytest.mark.parametrize("reading", ["index-served-500", "index-refused-404"])
@pytest.mark.parametrize("graphql", [True, False], ids=["access-token", "job-token"])
def test_without_registry_credentials_undated_images_are_kept_and_counted(
    gitlab_emulator: GitLabEmulator,
    pusher: ImagePusher,
    run_cli: RunCli,
    reading: str,
    graphql: bool,
) -> None:
    """Outside CI, with no registry login: nothing GitLab cannot date or digest is deleted, and
    one line says how many tags that kept and what would date them."""
    _configure(gitlab_emulator, reading)
    estate = _seed(gitlab_emulator, pusher, "group/app")
    env = _env(gitlab_emulator, pusher.registry, estate.project, graphql)
    for name in ("CI_REGISTRY", "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD"):
        del env[name]

    result = run_cli("sweep", "--delete", "--older-than", "7d", "--json", env=env)

    assert result.returncode == 0, result.stderr
    signature = f"sha256-{estate.old_digest.removeprefix('sha256:')}.sig"
    assert pusher.registry.tags(estate.repository) == sorted(
        [*LIVE, "gone-multi", "gone-old", "gone-young", signature]
    )
    notes = [line for line in result.stderr.splitlines() if "CI_REGISTRY_PASSWORD" in line]
    assert len(notes) == 1, result.stderr
    assert notes[0].split("note: ", 1)[-1].startswith("3 tags without a branch were kept")


@pytest.mark.parametrize("reading", ["index-served-500", "index-refused-404"])
def test_a_stop_job_deletes_an_index_through_the_api(
    gitlab_emulator: GitLabEmulator, pusher: ImagePusher, run_cli: RunCli, reading: str
) -> None:
    """`delete --via api` checks the tag's digest before deleting it; where GitLab cannot read
    an index ("404 Tag Not Found" would have said the tag was absent), the registry tells."""
    _configure(gitlab_emulator, reading)
    estate = _seed(gitlab_emulator, pusher, "group/app")
    env = _env(gitlab_emulator, pusher.registry, estate.project, graphql=False)
    image = f"{pusher.registry.host}/group/app:gone-old"

    result = run_cli(
        "delete", image, "--via", "api", "--expect-digest", estate.old_digest, "--json", env=env
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert (outcome["status"], outcome["digest"]) == ("deleted", estate.old_digest)
    assert "gone-old" not in pusher.registry.tags("group/app")
