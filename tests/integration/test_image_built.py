"""The image itself: built here from the Dockerfile the pipeline builds, pushed, measured, run.

devkit/image.py builds linux/amd64 and linux/arm64 with buildah (or reuses the cached build of
the same inputs); the index is pushed to a real registry and everything below reads it from
there: the sizes from the registry's manifests, the amd64 image run by buildah as its own user
against a second registry, the arm64 image under qemu-user when binfmt_misc has it.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import image
from devkit.local_registry import LocalRegistry
from tests.conftest import require_tool
from tests.fakes.gitlab_emulator import Role
from tests.support.once import once_per_run

# Every test here needs the built image (the session's built_image fixture).
pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / ".gitlab/ci/image-smoke.sh"
SIZE = ROOT / ".gitlab/ci/image-size.sh"
REPOSITORY = "group/registry-cleanup/image"
TAG = "0123456789abcdef0123456789abcdef01234567"
ELF_MAGIC = b"\x7fELF"
# e_machine, the 16-bit little-endian field at offset 18 of an ELF header.
ELF_MACHINE = {"linux/amd64": 62, "linux/arm64": 183}
QEMU_AARCH64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


def buildah(*args: str, stdin: str | None = None, timeout: float = 300):
    return subprocess.run(
        image.buildah(*args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> image.BuiltImage:
    require_tool("buildah", shutil.which("buildah"))
    require_tool("mmdebstrap", shutil.which("mmdebstrap"))
    if os.geteuid() != 0:
        require_tool("root (buildah's chroot isolation builds as root)", None)
    log = tmp_path_factory.mktemp("image-build") / "build.log"

    def build() -> dict[str, str]:
        built = image.build(log=log)
        return {"layout": str(built.layout), "key": built.key}

    # One build per run, whichever worker asks first (tests/support/once.py).
    done = once_per_run(tmp_path_factory, "built-image", build)
    return image.BuiltImage(Path(done["layout"]), done["key"])


@pytest.fixture(scope="module")
def image_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_binary_2_8: str
) -> Iterator[LocalRegistry]:
    # Which registry holds the image does not matter here: one flavour, once per module.
    with LocalRegistry(tmp_path_factory.mktemp("image-registry"), flavour="2.8") as running:
        yield running


def regctl_config(registry: LocalRegistry, path: Path) -> Path:
    host = {"tls": "disabled", "user": registry.username, "pass": registry.password}
    path.write_text(json.dumps({"incDockerCred": False, "hosts": {registry.host: host}}))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def regctl_env(
    image_registry: LocalRegistry, regctl_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    config = regctl_config(image_registry, tmp_path_factory.mktemp("regctl") / "regctl.json")
    return {
        "PATH": f"{Path(regctl_binary).parent}:/usr/bin:/bin",
        "HOME": str(config.parent),
        "REGCTL_CONFIG": str(config),
    }


@pytest.fixture(scope="module")
def pushed(
    built_image: image.BuiltImage,
    image_registry: LocalRegistry,
    regctl_binary: str,
    regctl_env: dict[str, str],
) -> Iterator[str]:
    reference = f"{image_registry.host}/{REPOSITORY}:{TAG}"
    # `./dev image --push`'s own code path: a copy of the caller's regctl config (here the
    # test registry's login), plain HTTP because the registry is on loopback.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REGCTL_CONFIG", regctl_env["REGCTL_CONFIG"])
        image.push(built_image, reference, regctl_binary)
    yield reference
    # The containers pulled it into buildah's storage under this run's registry port: a name
    # no later run uses, about 300 MB each in vfs storage.
    buildah("rmi", "--force", reference)


def image_config(regctl_binary: str, env: dict[str, str], reference: str, platform: str):
    shown = subprocess.run(
        [regctl_binary, "image", "config", "--platform", platform, reference],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(shown.stdout)


# -- size, read from the registry ------------------------------------------------------------


def test_each_platform_is_under_the_budget_as_the_registry_stores_it(
    built_image: image.BuiltImage, pushed: str, regctl_env: dict[str, str]
):
    result = subprocess.run(
        ["sh", str(SIZE), pushed],
        env={**regctl_env, "IMAGE_BUDGET_BYTES": str(image.BUDGET_BYTES)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    measured = {line.split()[0]: int(line.split()[2]) for line in result.stdout.splitlines()}
    assert set(measured) == set(image.PLATFORMS)
    for platform, size in measured.items():
        assert 0 < size < image.BUDGET_BYTES, f"{platform}: {size} bytes"
    # The figure `./dev image` prints is the registry's.
    assert {s.platform: s.compressed_bytes for s in built_image.sizes()} == measured


# -- the image's configuration ---------------------------------------------------------------


@pytest.mark.parametrize("platform", image.PLATFORMS)
def test_the_image_runs_as_10001_without_entrypoint_and_is_labelled(
    platform: str, pushed: str, regctl_binary: str, regctl_env: dict[str, str]
):
    config = image_config(regctl_binary, regctl_env, pushed, platform)
    assert config["architecture"] == platform.split("/")[1]
    settings = config["config"]
    assert settings["User"] == "10001:10001"
    assert not settings.get("Entrypoint")
    labels = settings["Labels"]
    expected = image.default_build_args()
    assert labels["org.opencontainers.image.revision"] == expected.revision
    assert labels["org.opencontainers.image.version"] == expected.version
    assert "/opt/registry-cleanup/bin" in next(e for e in settings["Env"] if e.startswith("PATH="))


# -- the files: what is in, what is not, and for which machine -------------------------------


def layer_members(built_image: image.BuiltImage, platform: str) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file in the platform's layers."""
    for layer in built_image.layers(platform):
        with gzip.open(layer) as stream, tarfile.open(fileobj=stream) as tar:
            for member in tar:
                if member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    yield member.name.removeprefix("./"), extracted.read()


def layer_paths(built_image: image.BuiltImage, platform: str) -> set[str]:
    """Every path in the platform's layers but directories: files and links."""
    paths = set()
    for layer in built_image.layers(platform):
        with gzip.open(layer) as stream, tarfile.open(fileobj=stream) as tar:
            paths |= {m.name.removeprefix("./") for m in tar if not m.isdir()}
    return paths


def layer_files(built_image: image.BuiltImage, platform: str) -> Iterator[tuple[str, bytes]]:
    """(path, first 20 bytes) of every regular file: enough for an ELF header."""
    for name, content in layer_members(built_image, platform):
        yield name, content[:20]


@pytest.mark.parametrize("platform", image.PLATFORMS)
def test_every_elf_file_is_built_for_the_platform(built_image: image.BuiltImage, platform: str):
    # Proves the arm64 image needs no emulation to have been built right: Debian's arm64
    # packages, aarch64 wheels and a cross-compiled regctl, nothing from the build machine.
    machines: dict[str, int] = {}
    for name, head in layer_files(built_image, platform):
        if head.startswith(ELF_MAGIC):
            machines[name] = int.from_bytes(head[18:20], "little")
    assert "usr/local/bin/regctl" in machines
    assert "usr/bin/python3.13" in machines
    assert any("_re2" in name for name in machines), "google-re2's binding is missing"
    wrong = {name: m for name, m in machines.items() if m != ELF_MACHINE[platform]}
    assert not wrong, f"{platform}: ELF files for another machine: {sorted(wrong)[:10]}"


def test_the_image_has_no_package_manager_perl_or_pip(built_image: image.BuiltImage):
    names = {name for name, _ in layer_files(built_image, "linux/amd64")}
    for tool in ("apt", "apt-get", "dpkg", "perl", "pip", "pip3"):
        assert not [n for n in names if n.endswith(f"bin/{tool}")], f"{tool} is in the image"
    assert not [n for n in names if "/site-packages/pip/" in n]
    assert "bin/sh" in names or "usr/bin/dash" in names
    assert "etc/ssl/certs/ca-certificates.crt" in names


# PEP 552: the flags word after the magic number; 0b01 is hash-based, not checked at import.
UNCHECKED_HASH = 1


def pyc_headers(built_image: image.BuiltImage, platform: str) -> dict[str, bytes]:
    files = layer_files(built_image, platform)
    return {name: head for name, head in files if name.endswith(".pyc")}


def test_bytecode_is_only_for_the_modules_the_command_imports_beside_their_sources(
    built_image: image.BuiltImage,
):
    """The bytecode stage (scripts/startup_bytecode.py): CPython 3.13 .pyc files in the
    __pycache__ beside a source the image has, one magic number, unchecked-hash (the image's
    user cannot change a source, and a timestamp would depend on file times builders rewrite);
    the same modules on both platforms, and not the whole standard library."""
    amd64 = pyc_headers(built_image, "linux/amd64")
    names = layer_paths(built_image, "linux/amd64")
    for name, head in amd64.items():
        directory, _, file = name.rpartition("/__pycache__/")
        module, _, tag = file.removesuffix(".pyc").rpartition(".")
        assert tag == "cpython-313", name
        assert f"{directory}/{module}.py" in names, f"{name} has no source in the image"
        assert int.from_bytes(head[4:8], "little") == UNCHECKED_HASH, name
    assert len({head[:4] for head in amd64.values()}) == 1, "more than one magic number"
    for module in ("registry_cleanup/cli/app", "registry_cleanup/engine/sweep", "gitlab/client"):
        site = "opt/registry-cleanup/lib/python3.13/site-packages"
        directory, _, file = f"{site}/{module}".rpartition("/")
        assert f"{directory}/__pycache__/{file}.cpython-313.pyc" in amd64, module
    stdlib = [n for n in names if n.startswith("usr/lib/python3.13/") and n.endswith(".py")]
    assert 100 < len(amd64) < len(stdlib), len(amd64)
    assert set(pyc_headers(built_image, "linux/arm64")) == set(amd64)


def test_the_certificate_bundle_is_debians_and_not_the_build_machines(
    built_image: image.BuiltImage,
):
    bundle = extract_file(built_image, "linux/amd64", "etc/ssl/certs/ca-certificates.crt")
    assert bundle.count(b"BEGIN CERTIFICATE") > 100
    for local in image._local_ca_files():
        body = b"".join(local.read_bytes().split(b"-----")[2].split())
        assert body not in b"".join(bundle.split()), f"{local} leaked into the image"


def extract_file(built_image: image.BuiltImage, platform: str, path: str) -> bytes:
    for name, content in layer_members(built_image, platform):
        if name == path:
            return content
    raise AssertionError(f"{path} is not in the {platform} image")


# -- running it ------------------------------------------------------------------------------


def authfile(registry: LocalRegistry, path: Path) -> Path:
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    path.write_text(json.dumps({"auths": {registry.host: {"auth": basic}}}))
    path.chmod(0o600)
    return path


@pytest.fixture
def container(request, pushed: str, image_registry: LocalRegistry, tmp_path: Path):
    """A buildah working container of the pushed image for one platform, pulled by the test."""
    platform = request.param
    auth = authfile(image_registry, tmp_path / "auth.json")
    os_name, arch = platform.split("/")
    created = buildah(
        "from",
        "--pull-always",
        "--tls-verify=false",
        "--authfile",
        str(auth),
        "--os",
        os_name,
        "--arch",
        arch,
        f"docker://{pushed}",
    )
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip().splitlines()[-1]
    yield platform, name
    buildah("rm", name)


SMOKE_IN_CONTAINER = (
    # The password arrives on stdin, never in argv or the container's config.
    "read -r SMOKE_PASSWORD; export SMOKE_PASSWORD; id -u; uname -m; sh /smoke/image-smoke.sh"
)


def run_smoke(name: str, registry: LocalRegistry):
    return buildah(
        "run",
        "--isolation",
        "chroot",
        "--env",
        f"SMOKE_REGISTRY={registry.host}",
        "--env",
        "SMOKE_TLS=disabled",
        "--env",
        f"SMOKE_USERNAME={registry.username}",
        "--volume",
        f"{SMOKE.parent}:/smoke:ro",
        name,
        "--",
        "sh",
        "-c",
        SMOKE_IN_CONTAINER,
        stdin=registry.password + "\n",
        timeout=600,
    )


@pytest.mark.parametrize("container", ["linux/amd64"], indirect=True)
def test_the_amd64_image_deletes_one_of_two_tags_as_its_own_user(container, registry):
    _, name = container
    result = run_smoke(name, registry)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "10001", "the image did not run as its own user"
    assert lines[1] == "x86_64"
    assert any(line.startswith("registry-cleanup ") for line in lines)
    assert "VCSTag:" in result.stdout  # regctl version
    assert "smoke: ok" in result.stdout
    assert registry.tags("smoke/registry-cleanup") == ["keep-smoke"]
    assert registry.password not in result.stdout + result.stderr


@pytest.mark.parametrize("container", ["linux/arm64"], indirect=True)
def test_the_arm64_image_does_the_same_under_qemu(container, registry):
    registered = QEMU_AARCH64.is_file() and QEMU_AARCH64.read_text().startswith("enabled")
    # ./dev setup registers qemu-aarch64 with binfmt_misc: under CI its absence is a failure;
    # elsewhere this is a skip, and the ELF check above still proves the image is arm64.
    require_tool("qemu-aarch64 in binfmt_misc", str(QEMU_AARCH64) if registered else None)
    _, name = container
    result = run_smoke(name, registry)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "10001"
    assert lines[1] == "aarch64"
    assert "smoke: ok" in result.stdout
    assert registry.tags("smoke/registry-cleanup") == ["keep-smoke"]


# -- the docker path a terminal user takes: `docker run --rm -e GITLAB_TOKEN <image> ...` ------


def run_command(name: str, *argv: str, stdin: str | None = None):
    """One command in the working container, as `docker run --rm <image> ARGV` runs it."""
    return buildah("run", "--isolation", "chroot", name, "--", *argv, stdin=stdin, timeout=300)


def compiled_at_start(verbose_stderr: str) -> tuple[list[str], list[str]]:
    """From `python -v`'s lines: the modules read from .pyc files and those compiled from
    source (importlib says "code object from" with the file it used)."""
    used = [
        line.removeprefix("# code object from ").strip("'")
        for line in verbose_stderr.splitlines()
        if line.startswith("# code object from ")
    ]
    return [u for u in used if u.endswith(".pyc")], [u for u in used if u.endswith(".py")]


@pytest.mark.parametrize("container", ["linux/amd64"], indirect=True)
def test_the_command_starts_from_bytecode_and_compiles_nothing(container):
    _, name = container
    for argv in (["--version"], ["sweep", "--help"], ["delete", "--help"]):
        started = run_command(name, "env", "PYTHONVERBOSE=1", "registry-cleanup", *argv)
        assert started.returncode == 0, started.stderr[-2000:]
        from_bytecode, from_source = compiled_at_start(started.stderr)
        assert not from_source, f"{argv}: compiled at start: {from_source}"
        assert len(from_bytecode) > 100, argv


@pytest.mark.parametrize("container", ["linux/amd64"], indirect=True)
def test_the_image_prints_version_and_help_and_sweeps_a_project_dry(
    container, gitlab_emulator, pusher
):
    _, name = container
    version = image.default_build_args().version
    shown = run_command(name, "registry-cleanup", "--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"registry-cleanup {version}\n"
    helped = run_command(name, "registry-cleanup", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "sweep" in helped.stdout
    assert "--install-completion" in helped.stdout

    project = gitlab_emulator.add_project("group/app", default_branch="main", branches=["main"])
    gitlab_emulator.add_repository(project)
    for tag in ("main", "feature-gone"):
        pusher.push("group/app", tag)
    token = gitlab_emulator.personal_token(project, Role.developer)
    # The token arrives on stdin, as `-e GITLAB_TOKEN` passes it without a value: never argv.
    sweep = f"sweep --api-url {gitlab_emulator.url} --project group/app"
    swept = run_command(
        name,
        "sh",
        "-c",
        f"read -r GITLAB_TOKEN; export GITLAB_TOKEN; exec registry-cleanup {sweep}",
        stdin=token + "\n",
    )
    assert swept.returncode == 0, swept.stdout + swept.stderr
    rows = [line.split() for line in swept.stdout.splitlines() if line.startswith("127.0.0.1:")]
    assert {row[1]: row[2] for row in rows} == {"feature-gone": "would-delete", "main": "kept"}
    assert "(dry run): kept 1, would-delete 1" in swept.stderr
    assert pusher.registry.tags("group/app") == ["feature-gone", "main"]
    assert token not in swept.stdout + swept.stderr
