"""The Dockerfile's promises that can be checked without a container engine.

Pinned regctl version, a checksum per platform, a checksum step that really fails on a wrong
binary, a base pinned by version and digest, and a non-root final stage without ENTRYPOINT.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHECKSUMS = ROOT / "regctl.sha256"
ARCHITECTURES = ("amd64", "arm64")
SUM_LINE = re.compile(r"(?P<sum>[0-9a-f]{64})  regctl-linux-(?P<arch>[a-z0-9]+)")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    result = []
    for entry in joined:
        keyword, _, arguments = entry.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(parsed: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by stage; the global ARGs before the first FROM are dropped."""
    grouped: list[list[Instruction]] = []
    for instruction in parsed:
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def arg_default(parsed: list[Instruction], name: str) -> str:
    for instruction in parsed:
        if instruction.keyword == "ARG" and instruction.arguments.startswith(f"{name}="):
            return instruction.arguments.split("=", 1)[1]
    raise AssertionError(f"the Dockerfile has no ARG {name}=...")


@pytest.fixture(scope="module")
def parsed() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def setup_regctl_version() -> str:
    found = re.search(r'^REGCTL_VERSION="([^"]+)"', (ROOT / "scripts/setup.sh").read_text(), re.M)
    assert found, "scripts/setup.sh no longer sets REGCTL_VERSION"
    return found.group(1)


def test_regctl_version_is_the_one_the_test_harness_installs(parsed):
    assert arg_default(parsed, "REGCTL_VERSION") == setup_regctl_version()


def test_checksum_file_is_for_that_version(parsed):
    header = re.search(r"^# version: (\S+)$", CHECKSUMS.read_text(), re.M)
    assert header, "regctl.sha256 does not say which regctl version its sums are for"
    assert header.group(1) == arg_default(parsed, "REGCTL_VERSION")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_architecture_has_one_checksum_with_its_source_above_it(arch):
    lines = CHECKSUMS.read_text().splitlines()
    found = [
        index
        for index, line in enumerate(lines)
        if (match := SUM_LINE.fullmatch(line)) and match.group("arch") == arch
    ]
    assert len(found) == 1, f"want exactly one sum line for regctl-linux-{arch}"
    above = lines[found[0] - 1]
    assert above.startswith("#"), "each sum needs a comment naming its source above it"
    assert above.strip("# "), "each sum needs a comment naming its source above it"


def test_checksum_file_has_nothing_but_comments_and_sum_lines():
    for line in CHECKSUMS.read_text().splitlines():
        assert line.startswith("#") or SUM_LINE.fullmatch(line), f"stray line: {line!r}"


def test_every_stage_starts_from_the_base_pinned_by_version_and_digest(parsed):
    base = arg_default(parsed, "PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.\d+\.\d+-[a-z0-9.]+@sha256:[0-9a-f]{64}", base), base
    for stage in stages(parsed):
        assert "${PYTHON_IMAGE}" in stage[0].arguments.split(), stage[0]


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    return stages(parsed)[-1]


def test_final_stage_runs_as_a_numeric_non_root_user(parsed):
    users = [i.arguments for i in final_stage(parsed) if i.keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), f"USER {users[-1]}: use a numeric uid, so runtimes can check it"
    assert int(uid) != 0, f"USER {users[-1]} is root"
    if gid:
        assert gid.isdigit(), users[-1]
        assert int(gid) != 0, users[-1]


def test_final_stage_has_no_entrypoint_so_runner_can_run_job_scripts(parsed):
    assert not [i for i in final_stage(parsed) if i.keyword == "ENTRYPOINT"]


def test_final_stage_labels_source_version_and_revision_from_build_args(parsed):
    stage = final_stage(parsed)
    labels = " ".join(i.arguments for i in stage if i.keyword == "LABEL")
    build_args = {i.arguments.split("=", 1)[0] for i in stage if i.keyword == "ARG"}
    for key, arg in (("source", "SOURCE"), ("version", "VERSION"), ("revision", "REVISION")):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels
        assert arg in build_args


def test_final_stage_takes_regctl_and_the_venv_and_puts_both_on_path(parsed):
    stage = final_stage(parsed)
    copies = [i.arguments for i in stage if i.keyword == "COPY"]
    assert any(c.endswith(" /usr/local/bin/regctl") for c in copies), copies
    env = " ".join(i.arguments for i in stage if i.keyword == "ENV")
    assert 'PATH="/opt/registry-cleanup/bin:${PATH}"' in env


def test_the_build_context_allows_every_copied_path(parsed):
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for instruction in parsed:
        if instruction.keyword != "COPY" or "--from=" in instruction.arguments:
            continue
        *sources, _ = shlex.split(instruction.arguments)
        for source in sources:
            assert source.rstrip("/") in allowed, f"{source} is outside the build context"


# -- the checksum step, run as written in the Dockerfile -----------------------------------------


def checksum_step(parsed: list[Instruction]) -> str:
    steps = [i.arguments for i in parsed if i.keyword == "RUN" and "sha256sum -c" in i.arguments]
    assert len(steps) == 1, "want one RUN that checks regctl with sha256sum -c"
    assert steps[0].startswith("set -eu;"), "the checksum RUN must stop at the first failure"
    return steps[0]


def run_step(script: str, workdir: Path, arch: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script],
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "TARGETARCH": arch},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_binary_with_another_sum_fails_the_step(parsed, tmp_path):
    (tmp_path / "regctl.sha256").write_text(CHECKSUMS.read_text())
    (tmp_path / "regctl-linux-amd64").write_bytes(b"not the regctl release\n")
    result = run_step(checksum_step(parsed), tmp_path, "amd64")
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
    assert not (tmp_path / "regctl").exists()


def test_an_architecture_without_a_sum_fails_the_step(parsed, tmp_path):
    (tmp_path / "regctl.sha256").write_text(CHECKSUMS.read_text())
    (tmp_path / "regctl-linux-s390x").write_bytes(b"anything\n")
    result = run_step(checksum_step(parsed), tmp_path, "s390x")
    assert result.returncode != 0
    assert "no sum for regctl-linux-s390x" in result.stderr
    assert not (tmp_path / "regctl").exists()


def test_a_binary_with_the_listed_sum_passes_and_is_installed(parsed, tmp_path):
    # The control for the two failures above: the same step accepts a matching file.
    content = b"stand-in for the release asset\n"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "regctl.sha256").write_text(f"# version: test\n{digest}  regctl-linux-arm64\n")
    (tmp_path / "regctl-linux-arm64").write_bytes(content)
    result = run_step(checksum_step(parsed), tmp_path, "arm64")
    assert result.returncode == 0, result.stderr
    installed = tmp_path / "regctl"
    assert installed.read_bytes() == content
    assert installed.stat().st_mode & 0o777 == 0o755
