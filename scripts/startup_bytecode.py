"""Compile, for the image, the modules the ``registry-cleanup`` command imports when it starts.

Run by the Dockerfile's ``bytecode`` stage with a venv of the same wheels for the build
platform: importing runs code, and the target's extension modules (arm64 on an amd64 builder)
cannot load here. The modules the command imports (every module of the package, and the help of
the commands, which typer renders with modules of its own) are found by importing them; each one's
source is then taken from the target's files, a copy of the image's root with its standard
library and venv (``--image-root``), and compiled into ``--out`` at the path the image will read
it from.

The .pyc files are "unchecked-hash" (PEP 552): nothing in the image can change a source (its
user cannot write there), and a timestamp .pyc would depend on file times that image builders
may rewrite. They are written by the build platform's python3.13, which the Dockerfile checks is
the target's Debian version, so the bytecode and its magic number are the target's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import os
import pkgutil
import py_compile
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

# Where the image reads them (Dockerfile: the venv and Debian's python3.13).
IMAGE_STDLIB = Path("/usr/lib/python3.13")
IMAGE_SITE_PACKAGES = Path("/opt/registry-cleanup/lib/python3.13/site-packages")
# What a job or a person runs first: the root help and each command's help build the typer
# app and render through typer's own modules.
STARTS = (["--help"], ["sweep", "--help"], ["delete", "--help"], ["restore", "--help"])


def import_what_the_command_imports() -> list[ModuleType]:
    import registry_cleanup
    from registry_cleanup.cli.app import main

    for module in pkgutil.walk_packages(registry_cleanup.__path__, "registry_cleanup."):
        importlib.import_module(module.name)
    for argv in STARTS:
        sys.argv = ["registry-cleanup", *argv]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main()
    return list(sys.modules.values())


def source_file(module: ModuleType) -> Path | None:
    """A module's .py file, if it has one (not frozen, built in or an extension)."""
    spec = getattr(module, "__spec__", None)  # typing.io and its like are not modules
    if spec is None or not spec.has_location or not (spec.origin or "").endswith(".py"):
        return None
    return Path(spec.origin or "")


def image_path(source: Path) -> Path | None:
    """Where the image has this module's source, or None when it is not ours to compile."""
    # The venv's scheme: Debian's python3.13 names its own dist-packages "purelib" otherwise.
    purelib, stdlib = sysconfig.get_path("purelib", "venv"), sysconfig.get_path("stdlib")
    for here, there in ((purelib, IMAGE_SITE_PACKAGES), (stdlib, IMAGE_STDLIB)):
        if source.is_relative_to(here):
            return there / source.relative_to(here)
    return None


def in_image(path: Path, image_root: Path) -> Path:
    """``path`` with its links followed inside the image's root, not this stage's: Debian's
    sitecustomize.py is a link to /etc/python3.13/sitecustomize.py."""
    for _ in range(8):
        if not path.is_symlink():
            return path
        link = Path(os.readlink(path))
        path = image_root / link.relative_to("/") if link.is_absolute() else path.parent / link
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--image-root", type=Path, required=True, help="a copy of the image's stdlib and venv"
    )
    parser.add_argument("--out", type=Path, required=True, help="a root to write the .pyc under")
    args = parser.parse_args()

    # A set: some modules are imported under two names (typer._click and its aliases).
    targets = {image_path(s) for s in map(source_file, import_what_the_command_imports()) if s}
    compiled = 0
    for target in sorted(t for t in targets if t is not None):
        target_source = in_image(args.image_root / target.relative_to("/"), args.image_root)
        if not target_source.is_file():
            # A file only the build platform's wheel has: the image imports another.
            continue
        cached = Path(importlib.util.cache_from_source(str(target)))
        py_compile.compile(
            str(target_source),
            cfile=str(args.out / cached.relative_to("/")),
            dfile=str(target),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled += 1
    print(f"compiled {compiled} modules the command imports at start", file=sys.stderr)
    return 0 if compiled else 1


if __name__ == "__main__":
    sys.exit(main())
