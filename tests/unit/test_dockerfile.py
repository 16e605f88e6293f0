"""The Dockerfile's promises that can be read from the file itself.

regctl built from source at the version the test harness installs, with the harness's Go
toolchain; every build stage on the build platform from one Debian base pinned by version and
digest; a final stage FROM scratch with no RUN (so arm64 needs no emulation), non-root, without
ENTRYPOINT, labelled. tests/integration/test_image_built.py builds and runs the result.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


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


def setup_value(name: str) -> str:
    found = re.search(rf'^{name}="([^"]+)"', (ROOT / "scripts/setup.sh").read_text(), re.M)
    assert found, f"scripts/setup.sh no longer sets {name}"
    return found.group(1)


def test_regctl_version_is_the_one_the_test_harness_installs(parsed):
    assert arg_default(parsed, "REGCTL_VERSION") == setup_value("REGCTL_VERSION")


def test_regctl_is_built_with_the_harness_go_toolchain(parsed):
    assert arg_default(parsed, "GO_TOOLCHAIN") == setup_value("GO_TOOLCHAIN")


def regctl_stage(parsed: list[Instruction]) -> list[Instruction]:
    found = [s for s in stages(parsed) if s[0].arguments.endswith(" AS regctl")]
    assert len(found) == 1, "want one stage named regctl"
    return found[0]


def test_regctl_is_go_installed_from_source_stripped_and_cross_compiled(parsed):
    runs = " ".join(i.arguments for i in regctl_stage(parsed) if i.keyword == "RUN")
    assert "go install -trimpath -ldflags='-s -w'" in runs
    assert '"github.com/regclient/regclient/cmd/regctl@${REGCTL_VERSION}"' in runs
    assert 'GOARCH="${TARGETARCH}"' in runs
    assert "CGO_ENABLED=0" in runs


def test_the_base_is_debian_slim_pinned_by_version_and_digest(parsed):
    base = arg_default(parsed, "DEBIAN_IMAGE")
    assert re.fullmatch(r"debian:13\.\d+-slim@sha256:[0-9a-f]{64}", base), base
    # 13 is trixie, the suite the rootfs stage extracts and devkit/image.py bootstraps.
    assert arg_default(parsed, "DEBIAN_SUITE") == "trixie"
    from devkit import image

    assert image.DEBIAN_SUITE == "trixie"


def test_every_build_stage_runs_on_the_build_platform_from_that_base(parsed):
    *build_stages, _ = stages(parsed)
    assert len(build_stages) >= 3
    for stage in build_stages:
        words = stage[0].arguments.split()
        assert words[:2] == ["--platform=${BUILDPLATFORM}", "${DEBIAN_IMAGE}"], stage[0]


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    return stages(parsed)[-1]


def test_final_stage_is_scratch_with_no_run_so_no_platform_needs_emulation(parsed):
    stage = final_stage(parsed)
    assert stage[0].arguments == "scratch"
    assert not [i for i in stage if i.keyword == "RUN"]


def test_the_rootfs_is_extracted_without_maintainer_scripts_or_package_manager(parsed):
    runs = " ".join(i.arguments for s in stages(parsed) for i in s if i.keyword == "RUN")
    assert "--variant=extract" in runs
    assert '--architectures="${TARGETARCH}"' in runs
    assert '--include="${ROOTFS_PACKAGES}"' in runs
    packages = arg_default(parsed, "ROOTFS_PACKAGES").split(",")
    assert "python3.13-minimal" in packages
    assert "dash" in packages
    for unwanted in ("apt", "dpkg", "perl", "perl-base", "ca-certificates", "debconf"):
        assert unwanted not in packages
    # What dependencies drag in for maintainer scripts is removed again.
    dropped = arg_default(parsed, "ROOTFS_DROP").strip('"').split()
    assert {"debconf", "perl-base", "dpkg"} <= set(dropped)


def test_wheels_are_fetched_binary_only_for_the_target(parsed):
    runs = " ".join(i.arguments for s in stages(parsed) for i in s if i.keyword == "RUN")
    assert "--only-binary=:all:" in runs
    assert '--platform "manylinux_2_${minor}_${machine}"' in runs
    assert "--no-compile-bytecode" in runs


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
    assert any(c.endswith(" /opt/registry-cleanup") for c in copies), copies
    env = " ".join(i.arguments for i in stage if i.keyword == "ENV")
    path = re.search(r'PATH="([^"]+)"', env)
    assert path
    assert path.group(1).split(":")[:2] == ["/opt/registry-cleanup/bin", "/usr/local/bin"]


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
