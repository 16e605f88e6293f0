"""Fixtures for tests that need GitLab's API: the emulator in front of the real registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.images import ImagePusher
from devkit.local_registry import FlavourName, LocalRegistry
from tests.fakes.gitlab_emulator import GitLabEmulator
from tests.fakes.registry_store import RegistryStore


@pytest.fixture
def gitlab_emulator(registry: LocalRegistry) -> Iterator[GitLabEmulator]:
    """A GitLab API emulator whose registry data lives in the ``registry`` fixture.

    That is distribution v3 unless the test runs on both flavours (tests/conftest.py): GitLab's
    own registry deletes one tag in one request, and so does v3.
    """
    with GitLabEmulator(RegistryStore(registry)) as emulator:
        yield emulator


@dataclass(frozen=True)
class TokenAuth:
    """A registry that trusts only tokens from the emulator's /jwt/auth, as GitLab's does."""

    emulator: GitLabEmulator
    registry: LocalRegistry
    pusher: ImagePusher


@pytest.fixture
def token_auth(
    tmp_path: Path, registry_flavour: FlavourName, registry_binary: str, regctl_binary: str
) -> Iterator[TokenAuth]:
    registry = LocalRegistry(tmp_path / "token-registry", flavour=registry_flavour)
    emulator = GitLabEmulator(RegistryStore(registry))
    registry.auth = emulator.enable_registry_tokens(tmp_path / "token-auth")
    # The emulator first: the registry's readiness check already asks /jwt/auth for a token.
    with emulator, registry, ImagePusher(registry, regctl_binary) as pusher:
        yield TokenAuth(emulator, registry, pusher)
