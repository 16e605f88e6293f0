"""The group sweep: every project of a group, each swept with its own branches, rules and guard.

One group-level listing (GET /groups/:id/registry/repositories, 100 per page) names every
container repository below the group with its project; nothing is asked per project that this
listing already answered. Each project is then swept by sweep.Sweep exactly as a project sweep
would be. A project that cannot be read, or whose guard refuses, keeps every tag, is reported by
name and does not stop the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from registry_cleanup.domain.safety import TagPattern, compile_pattern
from registry_cleanup.engine.options import SweepOptions
from registry_cleanup.engine.outcome import Status
from registry_cleanup.engine.progress import Progress
from registry_cleanup.engine.sweep import Sweep, SweepResult
from registry_cleanup.errors import CleanupError, InputError
from registry_cleanup.gitlab import GitLabApi, GroupRepository


@dataclass(frozen=True)
class ProjectSelection:
    """Which projects of the group: subgroups or not, whole-path regexes to include/exclude."""

    subgroups: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A bad pattern is refused before the first request.
        self.patterns()

    def patterns(self) -> tuple[tuple[TagPattern, ...], tuple[TagPattern, ...]]:
        include = tuple(compile_pattern(p, option="--include-project") for p in self.include)
        exclude = tuple(compile_pattern(p, option="--exclude-project") for p in self.exclude)
        return include, exclude


@dataclass(frozen=True)
class GroupProject:
    """A project of the group that has container repositories."""

    id: int
    path: str  # full path, lowercase as GitLab builds repository paths
    repositories: tuple[GroupRepository, ...]


def projects_of(
    group_path: str, repositories: Sequence[GroupRepository], selection: ProjectSelection
) -> list[GroupProject]:
    """The selected projects, by path, each with its repositories (pure)."""
    include, exclude = selection.patterns()
    group = group_path.lower().strip("/")
    by_project: dict[int, list[GroupRepository]] = {}
    for repository in repositories:
        by_project.setdefault(repository.project_id, []).append(repository)
    chosen = []
    for project_id, listed in by_project.items():
        path = listed[0].project_path
        namespace = path.rsplit("/", 1)[0] if "/" in path else ""
        if not selection.subgroups and namespace != group:
            continue
        if include and not any(pattern.fullmatch(path) for pattern in include):
            continue
        if any(pattern.fullmatch(path) for pattern in exclude):
            continue
        ordered = tuple(sorted(listed, key=lambda r: r.path))
        chosen.append(GroupProject(id=project_id, path=path, repositories=ordered))
    return sorted(chosen, key=lambda p: p.path)


@dataclass
class ProjectOutcome:
    """One project's part of a group sweep: its sweep result, or why it could not be swept."""

    project: str
    project_id: int | None
    result: SweepResult | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or self.result is None or self.result.failed

    @property
    def why_failed(self) -> str | None:
        """One line: why this project counts as failed (None when it did not fail)."""
        if self.error is not None:
            return self.error
        if self.result is None:
            return "no result"
        if self.result.refused:
            return f"the guard refused to delete: {self.result.guard}"
        failed = [e for e in self.result.entries if e.status == Status.failed]
        if failed:
            return f"{len(failed)} deletion(s) failed, e.g. {failed[0].tag}: {failed[0].reason}"
        return None


def empty_summary() -> dict[str, int]:
    return {status.value: 0 for status in Status}


@dataclass
class GroupSweepResult:
    group: str
    dry_run: bool
    subgroups: bool = True
    projects: list[ProjectOutcome] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        totals = empty_summary()
        for outcome in self.projects:
            if outcome.result is not None:
                for key, value in outcome.result.summary().items():
                    totals[key] = totals.get(key, 0) + value
        return totals

    @property
    def failed_projects(self) -> list[str]:
        return [outcome.project for outcome in self.projects if outcome.failed]

    @property
    def failed(self) -> bool:
        return bool(self.failed_projects)


def listed_projects(api: GroupApi, selection: ProjectSelection) -> tuple[str, list[GroupProject]]:
    """The group's full path and its selected projects: the planning step, made of group-level
    calls only (the group, then its repositories 100 per page)."""
    group_path = api.full_path()
    return group_path, projects_of(group_path, api.group_repositories(), selection)


class GroupSweep:
    """Sweeps every selected project of one group, one after another."""

    def __init__(
        self,
        group_api: GroupApi,
        selection: ProjectSelection,
        options: SweepOptions,
        progress: Progress,
        *,
        sweep_for: Callable[[GitLabApi, SweepOptions], Sweep],
    ) -> None:
        if options.repositories:
            raise InputError("--repository picks within one project; it cannot go with --group")
        if options.default_branch:
            raise InputError(
                "--default-branch names one project's branch; with --group each project's "
                "default branch comes from its own branch list"
            )
        self._api = group_api
        self._selection = selection
        self._options = options
        self._progress = progress
        self._sweep_for = sweep_for

    def run(self) -> GroupSweepResult:
        group_path, projects = listed_projects(self._api, self._selection)
        result = GroupSweepResult(
            group=group_path, dry_run=not self._options.delete, subgroups=self._selection.subgroups
        )
        # One bar (or log line series) for the whole run: it counts projects.
        self._progress.start(len(projects), f"sweep of group {group_path}")
        try:
            for project in projects:
                outcome = self._sweep_project(project)
                result.projects.append(outcome)
                self._progress.advance("failed" if outcome.failed else "done")
        finally:
            self._progress.close()
        return result

    def _sweep_project(self, project: GroupProject) -> ProjectOutcome:
        outcome = ProjectOutcome(project=project.path, project_id=project.id)
        try:
            api = self._api.project_api(project.id, project.repositories)
            result = self._sweep_for(api, self._options).run()
        except CleanupError as error:
            # Cannot be read (or the API failed): nothing was deleted in this project.
            outcome.error = str(error)
            return outcome
        result.project = project.path
        outcome.result = result
        return outcome


class GroupApi(Protocol):
    """What the group sweep needs from GitLab (gitlab.GitLabGroupApi provides it)."""

    def full_path(self) -> str: ...
    def group_repositories(self) -> list[GroupRepository]: ...
    def project_api(
        self, project_id: int, repositories: Sequence[GroupRepository]
    ) -> GitLabApi: ...
