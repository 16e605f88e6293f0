"""The image's CI jobs: the size budget, the promotion on a version tag, and the YAML itself.

The scripts behind .gitlab/ci/image.yml run here for real against the registry fixture; the
YAML is validated against GitLab's CI schema inside a scratch pipeline with the project's
stages, and, with gitlab-ci-local, listed for branch, default-branch and tag pipelines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devkit.images import OCI_LAYER_GZIP, ImagePusher, image_blobs
from devkit.local_registry import LocalRegistry
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
CI_DIR = ROOT / ".gitlab/ci"
IMAGE_YML = CI_DIR / "image.yml"
STAGES = ["test", "build", "smoke", "self-test", "release"]
SHA = "0123456789abcdef0123456789abcdef01234567"


def run_script(name: str, *args: str, env: dict[str, str], cwd: Path | None = None):
    return subprocess.run(
        ["sh", str(CI_DIR / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def base_env(regctl_binary: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(regctl_binary).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
    }


def regctl_config(registry: LocalRegistry, path: Path) -> Path:
    host = {"tls": "disabled", "user": registry.username, "pass": registry.password}
    path.write_text(json.dumps({"incDockerCred": False, "hosts": {registry.host: host}}))
    path.chmod(0o600)
    return path


def layer_bytes(seed: str, architecture: str) -> int:
    _, blobs = image_blobs(seed, architecture=architecture)
    return sum(len(b.data) for b in blobs if b.media_type == OCI_LAYER_GZIP)


# -- image-size.sh ---------------------------------------------------------------------------


def test_size_lists_each_platform_with_its_layer_bytes(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str, tmp_path: Path
):
    pusher.push("group/app/image", SHA, multi_platform=True)
    env = {
        **base_env(regctl_binary),
        "REGCTL_CONFIG": str(regctl_config(registry, tmp_path / "regctl.json")),
    }
    result = run_script("image-size.sh", f"{registry.host}/group/app/image:{SHA}", env=env)
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [line[0] for line in lines] == ["linux/amd64", "linux/arm64"]
    for platform, digest, size in lines:
        architecture = platform.split("/")[1]
        assert digest == registry.digest("group/app/image", digest)
        assert int(size) == layer_bytes(f"group/app/image:{SHA}", architecture)


def test_size_fails_a_platform_over_budget(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str, tmp_path: Path
):
    pusher.push("group/app/image", SHA, multi_platform=True)
    env = {
        **base_env(regctl_binary),
        "REGCTL_CONFIG": str(regctl_config(registry, tmp_path / "regctl.json")),
        "IMAGE_BUDGET_BYTES": "10",
    }
    result = run_script("image-size.sh", f"{registry.host}/group/app/image:{SHA}", env=env)
    assert result.returncode == 1
    assert "over the budget of 10" in result.stderr


# -- image-promote.sh ------------------------------------------------------------------------


def promote(registry: LocalRegistry, regctl_binary: str, workdir: Path, tag: str, sha: str):
    env = {
        **base_env(regctl_binary),
        "CI_COMMIT_TAG": tag,
        "CI_COMMIT_SHA": sha,
        "IMAGE_REPOSITORY": f"{registry.host}/group/app/image",
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_USER": registry.username,
        "CI_REGISTRY_PASSWORD": registry.password,
        "REGISTRY_TLS": "disabled",
    }
    return run_script("image-promote.sh", env=env, cwd=workdir)


def test_promote_tags_the_version_and_writes_notes_with_the_digests(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str, tmp_path: Path
):
    digest = pusher.push("group/app/image", SHA, multi_platform=True)
    result = promote(registry, regctl_binary, tmp_path, "v1.2.3", SHA)
    assert result.returncode == 0, result.stderr
    for tag in ("1.2.3", "1.2", "1"):
        assert registry.digest("group/app/image", tag) == digest
    notes = (tmp_path / "release-notes.md").read_text()
    assert f"`{registry.host}/group/app/image:1.2.3` (:1.2.3, :1.2, :1)" in notes
    assert f"| all (index) | `{digest}` |" in notes
    for architecture in ("amd64", "arm64"):
        row = re.search(
            rf"\| linux/{architecture} \| `(sha256:[0-9a-f]{{64}})` \| (\d+) bytes \|", notes
        )
        assert row, notes
        assert registry.manifest_exists("group/app/image", row.group(1))
        assert int(row.group(2)) == layer_bytes(f"group/app/image:{SHA}", architecture)
    assert registry.password not in result.stdout + result.stderr + notes


def test_a_patch_of_an_older_line_does_not_move_the_major_tag(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str, tmp_path: Path
):
    newer = pusher.push("group/app/image", SHA, multi_platform=True)
    assert promote(registry, regctl_binary, tmp_path, "v1.2.3", SHA).returncode == 0
    older_sha = "f" * 40
    backport = pusher.push("group/app/image", older_sha, multi_platform=True)
    result = promote(registry, regctl_binary, tmp_path, "1.1.9", older_sha)
    assert result.returncode == 0, result.stderr
    assert registry.digest("group/app/image", "1.1.9") == backport
    assert registry.digest("group/app/image", "1.1") == backport
    assert registry.digest("group/app/image", "1") == newer
    assert registry.digest("group/app/image", "1.2") == newer


def test_lines_are_matched_by_number_not_by_pattern(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str, tmp_path: Path
):
    # 102.0.0 is not in line 1.2: its digits merely look like "1.2." to a careless regex.
    pusher.push("group/app/image", SHA, multi_platform=True)
    assert promote(registry, regctl_binary, tmp_path, "v102.0.0", SHA).returncode == 0
    sha = "d" * 40
    digest = pusher.push("group/app/image", sha, multi_platform=True)
    assert promote(registry, regctl_binary, tmp_path, "v1.2.0", sha).returncode == 0
    assert registry.digest("group/app/image", "1.2") == digest
    assert registry.digest("group/app/image", "1") == digest


def test_a_released_version_is_never_rewritten(
    registry: LocalRegistry, pusher: ImagePusher, regctl_binary: str, tmp_path: Path
):
    first = pusher.push("group/app/image", SHA, multi_platform=True)
    assert promote(registry, regctl_binary, tmp_path, "v2.0.0", SHA).returncode == 0
    other_sha = "e" * 40
    pusher.push("group/app/image", other_sha, multi_platform=True)
    result = promote(registry, regctl_binary, tmp_path, "v2.0.0", other_sha)
    assert result.returncode == 1
    assert "release tags are not rewritten" in result.stderr
    assert registry.digest("group/app/image", "2.0.0") == first
    # Re-running the same release is fine: same digest, nothing to rewrite.
    assert promote(registry, regctl_binary, tmp_path, "v2.0.0", SHA).returncode == 0


def test_promote_refuses_a_tag_that_is_not_a_version(regctl_binary: str, tmp_path: Path):
    env = {**base_env(regctl_binary), "CI_COMMIT_TAG": "v1.2.3-rc1", "CI_COMMIT_SHA": SHA}
    result = run_script("image-promote.sh", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "not a version tag" in result.stderr
    assert not (tmp_path / "release-notes.md").exists()


# -- the YAML --------------------------------------------------------------------------------


def scratch_pipeline(directory: Path) -> Path:
    """A project with a .gitlab-ci.yml that has the real stages and includes image.yml."""
    (directory / ".gitlab/ci").mkdir(parents=True)
    shutil.copy2(IMAGE_YML, directory / ".gitlab/ci/image.yml")
    pipeline = directory / ".gitlab-ci.yml"
    pipeline.write_text(
        yaml.safe_dump({"stages": STAGES, "include": [{"local": ".gitlab/ci/image.yml"}]})
    )
    return pipeline


def merged_pipeline(directory: Path, jobs: dict[str, object]) -> Path:
    """The scratch pipeline with the include resolved, as GitLab sees it, for the schema."""
    merged = directory / "merged-ci.yml"
    merged.write_text(yaml.safe_dump({"stages": STAGES, **jobs}, sort_keys=False))
    return merged


def check_jsonschema() -> str:
    return require_tool("check-jsonschema", shutil.which("check-jsonschema"))


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_image_jobs_validate_against_gitlab_ci_schema(tmp_path: Path):
    jobs = yaml.safe_load(IMAGE_YML.read_text())
    result = validate(merged_pipeline(tmp_path, jobs))
    assert result.returncode == 0, result.stdout + result.stderr
    # The stage names are the project's.
    for name, job in jobs.items():
        if isinstance(job, dict) and "stage" in job:
            assert job["stage"] in STAGES, name


def test_schema_check_catches_a_broken_job(tmp_path: Path):
    # The control: a misspelt keyword must fail, or the check above proves nothing.
    jobs = yaml.safe_load(IMAGE_YML.read_text())
    jobs["image:smoke"]["scirpt"] = jobs["image:smoke"].pop("script")
    result = validate(merged_pipeline(tmp_path, jobs))
    assert result.returncode != 0


def test_promote_runs_for_exactly_the_tags_the_release_job_publishes():
    rules = yaml.safe_load(IMAGE_YML.read_text())["image:promote"]["rules"]
    release = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())["release"]
    assert rules == release["rules"]
    assert release["needs"] == ["image:promote"]


def test_jobs_run_the_image_the_build_pushed():
    jobs = yaml.safe_load(IMAGE_YML.read_text())
    assert jobs["variables"]["IMAGE_REPOSITORY"] == "$CI_REGISTRY_IMAGE/image"
    assert '--tag "$IMAGE_REPOSITORY:$CI_COMMIT_SHA"' in " ".join(jobs["image:build"]["script"])
    for name in ("image:smoke", "image:promote"):
        assert jobs[name]["image"] == "$CI_REGISTRY_IMAGE/image:$CI_COMMIT_SHA", name


def gitlab_ci_local() -> str:
    candidates = [shutil.which("gitlab-ci-local")]
    candidates += [
        str(path)
        for path in (
            ROOT / "node_modules/.bin/gitlab-ci-local",
            ROOT / ".tools/bin/gitlab-ci-local",
            ROOT / ".tools/node_modules/.bin/gitlab-ci-local",
        )
        if path.exists()
    ]
    return require_tool("gitlab-ci-local", next((c for c in candidates if c), None))


def listed_jobs(project: Path, branch: str, *variables: str) -> list[str]:
    subprocess.run(["git", "checkout", "-q", "-B", branch], cwd=project, check=True)
    args = [gitlab_ci_local(), "--list-json", "--ignore-predefined-vars", "CI_COMMIT_TAG"]
    for variable in variables:
        args += ["--variable", variable]
    result = subprocess.run(
        args, cwd=project, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [job["name"] for job in json.loads(result.stdout) if job["when"] != "never"]


@pytest.fixture
def scratch_project(tmp_path: Path) -> Path:
    scratch_pipeline(tmp_path)
    git = ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "scratch"], cwd=tmp_path, check=True)
    return tmp_path


EVERY_PIPELINE = ["image:build", "image:smoke", "image:smoke:arm64"]


@pytest.mark.parametrize(
    ("branch", "variables", "expected"),
    [
        ("feature/x", (), EVERY_PIPELINE),
        ("main", (), EVERY_PIPELINE),
        ("main", ("CI_COMMIT_TAG=1.2.3",), [*EVERY_PIPELINE, "image:promote"]),
        ("main", ("CI_COMMIT_TAG=v1.2.3",), EVERY_PIPELINE),
        ("main", ("CI_COMMIT_TAG=1.2.3-rc1",), EVERY_PIPELINE),
    ],
    ids=["branch", "default-branch", "version-tag", "v-prefixed-tag", "other-tag"],
)
def test_jobs_listed_by_gitlab_ci_local(scratch_project: Path, branch, variables, expected):
    assert listed_jobs(scratch_project, branch, *variables) == expected
