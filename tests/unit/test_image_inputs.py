"""devkit/image.py's decisions that need no build: the cache key and where `--push` goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit import image

ARGS = image.BuildArgs(version="1.2.3", revision="a" * 40, source="https://example.test/x")
BASE = "localhost/registry-cleanup/debian-trixie:0123456789abcdef"


def test_the_context_is_what_dockerignore_lets_in():
    files = {str(p.relative_to(image.ROOT)) for p in image.context_files()}
    assert "pyproject.toml" in files
    assert "README.md" in files
    assert "entrypoint/registry_cleanup/__init__.py" in files
    assert not [f for f in files if f.startswith(("tests/", "devkit/", ".git/"))]
    assert not [f for f in files if f.endswith(".pyc") or "__pycache__" in f]


def test_the_key_is_stable_for_the_same_inputs():
    assert image.inputs_key(BASE, ARGS) == image.inputs_key(BASE, ARGS)


@pytest.mark.parametrize(
    ("base", "args"),
    [
        ("localhost/registry-cleanup/debian-trixie:fedcba9876543210", ARGS),
        (BASE, image.BuildArgs(ARGS.version, "b" * 40, ARGS.source)),
        (BASE, image.BuildArgs("1.2.4", ARGS.revision, ARGS.source)),
    ],
)
def test_another_base_or_build_arg_is_another_build(base, args):
    assert image.inputs_key(base, args) != image.inputs_key(BASE, ARGS)


def test_a_changed_context_file_is_another_build(monkeypatch, tmp_path: Path):
    # A copy of the build context with one byte changed in the package.
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        (tmp_path / name).write_bytes((image.ROOT / name).read_bytes())
    package = tmp_path / "entrypoint/registry_cleanup"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "1.2.3"\n')
    monkeypatch.setattr(image, "ROOT", tmp_path)
    monkeypatch.setattr(image, "DOCKERFILE", tmp_path / "Dockerfile")
    monkeypatch.setattr(image, "DOCKERIGNORE", tmp_path / ".dockerignore")
    before = image.inputs_key(BASE, ARGS)
    (package / "__init__.py").write_text('__version__ = "1.2.3"  # changed\n')
    assert image.inputs_key(BASE, ARGS) != before
    # A bytecode file is not part of the context, so it changes nothing.
    after = image.inputs_key(BASE, ARGS)
    (package / "__pycache__").mkdir()
    (package / "__pycache__/__init__.cpython-313.pyc").write_bytes(b"\0")
    assert image.inputs_key(BASE, ARGS) == after


@pytest.mark.parametrize(
    ("reference", "host", "loopback"),
    [
        ("127.0.0.1:5000/group/image:dev", "127.0.0.1:5000", True),
        ("localhost:5000/image:dev", "localhost:5000", True),
        ("[::1]:5000/image:dev", "[::1]:5000", True),
        ("registry.example.com/group/image:1.0", "registry.example.com", False),
        ("10.0.0.5:5000/image:dev", "10.0.0.5:5000", False),
    ],
)
def test_push_plain_http_only_to_loopback(reference, host, loopback):
    assert image.registry_host(reference) == host
    assert image.is_loopback(host) is loopback


@pytest.mark.parametrize("reference", ["image:dev", "group/image:dev", ""])
def test_a_reference_without_a_registry_host_is_refused(reference):
    with pytest.raises(SystemExit, match="names no registry host"):
        image.registry_host(reference)
