"""Where a sweep runs and how it is shown, for ``registry-cleanup sweep`` (cli/sweep.py): one
project, a reviewed plan applied, or a group. Each connects, makes one call into the engine and
hands its result to the output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry_cleanup.cli import connect
from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.output.shown import Output

if TYPE_CHECKING:
    from registry_cleanup.engine.group_sweep import ProjectSelection
    from registry_cleanup.engine.options import SweepOptions
    from registry_cleanup.engine.progress import Progress
    from registry_cleanup.engine.sweep import SweepResult
    from registry_cleanup.gitlab import GitLabApi

__all__ = ["SweepRun"]


@dataclass(frozen=True)
class SweepRun:
    """Where a sweep runs and how it is shown: each method connects, makes one call into the
    engine and hands its result to the output."""

    api_url: str | None
    project_ref: str | None
    deletes: connect.RegistryLogin | None
    reads: connect.RegistryLogin
    output: Output
    # sweep --sizes: the storage figures, read from the registry.
    sizes: bool = False

    def project(self, options: SweepOptions, plan_out: Path | None) -> int:
        from datetime import UTC, datetime

        from registry_cleanup.engine.plan_file import instance_of, plan_document
        from registry_cleanup.engine.sweep import Sweep
        from registry_cleanup.output.report import write_document
        from registry_cleanup.output.sweep_table import as_document, write_failure_report

        # The plan's time is when its listing began: its age counts from what it saw.
        started = datetime.now(UTC).replace(microsecond=0)
        try:
            api = connect.project_api(self.api_url, self.project_ref)
            with self._registry() as access:
                result = Sweep(
                    api,
                    options,
                    _progress(),
                    store_for=access.store_for(api),
                    images=access.images,
                    sizes=access.manifests,
                ).run()
        except CleanupError as error:
            if self.output.report is not None and not isinstance(error, InputError):
                # The group's child jobs merge these reports: a project that could not be
                # read is named there with the reason, not just missing.
                write_failure_report(
                    self.output.report, self.project_ref or "", not options.delete, str(error)
                )
            raise
        plan = None
        if plan_out is not None:
            plan = plan_document(
                as_document(result),
                instance=instance_of(self.api_url or ""),
                project=self.project_ref or "",
                repositories=result.repositories,
                options=options,
                created_at=started,
            )
            write_document(plan_out, plan)
        return self.output.show_sweep(result, document=plan, reported_sizes=_sizes(api, result))

    def apply(
        self, plan_path: Path, max_age: str, trust_branch_list: bool, concurrency: int | None
    ) -> int:
        from registry_cleanup.engine.apply import apply_plan_file
        from registry_cleanup.engine.plan_file import instance_of
        from registry_cleanup.output.sweep_table import applied_document

        api = connect.project_api(self.api_url, self.project_ref)
        with self._registry() as access:
            result, plan = apply_plan_file(
                api,
                plan_path,
                _progress(),
                instance=instance_of(self.api_url or ""),
                max_age=max_age,
                trust_branch_list=trust_branch_list,
                concurrency=concurrency,
                store_for=access.store_for(api),
                images=access.images,
                sizes=access.manifests,
            )
        document = applied_document(result, plan_path, plan.created_at)
        return self.output.show_sweep(result, document=document, reported_sizes=_sizes(api, result))

    def group(self, group: str, selection: ProjectSelection, options: SweepOptions) -> int:
        from registry_cleanup.engine.group_sweep import GroupSweep
        from registry_cleanup.engine.progress import SilentProgress
        from registry_cleanup.engine.sweep import Sweep

        api = connect.group_api(self.api_url, group)
        with self._registry() as access:
            result = GroupSweep(
                api,
                selection,
                options,
                _progress(),
                sweep_for=lambda project_api, opts: Sweep(
                    project_api,
                    opts,
                    SilentProgress(),
                    store_for=access.store_for(project_api),
                    images=access.images,
                    sizes=access.manifests,
                ),
            ).run()
        return self.output.show_group(result)

    def _registry(self) -> AbstractContextManager[connect.RegistryAccess]:
        return connect.registry_access(self.deletes, self.reads, sizes=self.sizes)


def _progress() -> Progress:
    from registry_cleanup.output.progress import progress_for

    return progress_for(sys.stderr, in_ci=connect.in_ci())


def _sizes(api: GitLabApi, result: SweepResult) -> Callable[[], dict[str, int | None]]:
    """Each repository's size as GitLab reports it, for the page (asked only if one is written)."""
    return lambda: {repo.location: api.registry.size(repo) for repo in result.repositories}
