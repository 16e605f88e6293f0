"""Run the registry's own garbage collector, as an administrator would, on a LocalRegistry.

distribution collects only while stopped (`registry garbage-collect config.yml`); with
--delete-untagged it also removes manifests no tag points at, which is what happens to a
deleted tag's image on GitLab (its online collector) and what makes a restore impossible.
"""

from __future__ import annotations

import subprocess

from devkit.local_registry import LocalRegistry, find_registry_binary


def garbage_collect(registry: LocalRegistry) -> str:
    """Stop the registry, collect untagged manifests and unreferenced blobs, start it again."""
    # The flavour's own collector: it knows the storage layout of the release that wrote it.
    binary = find_registry_binary(registry.flavour)
    if binary is None:
        raise RuntimeError(f"registry {registry.flavour} is not installed")
    registry.stop()
    try:
        completed = subprocess.run(
            [binary, "garbage-collect", "--delete-untagged", str(registry.root / "config.yml")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        registry.start()
    if completed.returncode != 0:
        raise RuntimeError(f"garbage-collect failed: {completed.stderr[-2000:]}")
    return completed.stdout
