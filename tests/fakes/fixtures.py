"""Fixtures for tests that need GitLab's API: the emulator in front of the real registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devkit.local_registry import LocalRegistry
from tests.fakes.gitlab_emulator import GitLabEmulator
from tests.fakes.registry_store import RegistryStore


@pytest.fixture
def gitlab_emulator(registry: LocalRegistry) -> Iterator[GitLabEmulator]:
    """A GitLab API emulator whose registry data lives in the ``registry`` fixture."""
    with GitLabEmulator(RegistryStore(registry)) as emulator:
        yield emulator
