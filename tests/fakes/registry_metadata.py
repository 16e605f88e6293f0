"""What GitLab's container registry metadata database knows that the plain registry API does not.

GitLab.com (and self-managed registries with the metadata database) answer tag listings from
the registry's own database through its GitLab API (``/gitlab/v1/repositories/<path>/tags/list/``,
ContainerRegistry::GitlabApiClient#tags). Each tag row has ``created_at`` (when the tag was
pushed), ``updated_at`` (when it was last re-pointed), ``published_at``, ``digest``,
``config_digest`` and ``size_bytes``. app/models/container_repository.rb
transform_tags_page copies them onto ContainerRegistry::Tag: ``force_created_at_from_iso8601``
(so ``created_at`` is the push time, not the image config's ``created``), ``revision`` =
config_digest's hex, ``total_size`` = size_bytes.

distribution records a tag push by writing ``_manifests/tags/<tag>/current/link``; its mtime is
the emulator's push time (re-pushing the tag rewrites it, as ``updated_at`` changes). Tests set
it with :func:`set_pushed_at`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from devkit.local_registry import LocalRegistry


def _link(registry: LocalRegistry, repository: str, tag: str) -> os.PathLike[str]:
    return registry.tags_directory(repository) / tag / "current" / "link"


def pushed_at(registry: LocalRegistry, repository: str, tag: str) -> datetime | None:
    """When ``tag`` was last pushed (the metadata database's updated_at || created_at)."""
    try:
        stamp = os.stat(_link(registry, repository, tag)).st_mtime
    except FileNotFoundError:
        return None
    return datetime.fromtimestamp(stamp, UTC)


def set_pushed_at(registry: LocalRegistry, repository: str, tag: str, moment: datetime) -> None:
    stamp = moment.timestamp()
    os.utime(_link(registry, repository, tag), (stamp, stamp))
