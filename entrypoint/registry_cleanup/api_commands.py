"""The GitLab-API commands, wired: settings -> GitLabApi -> work -> output -> exit code.

cli/ only declares options and calls these. Everything that needs python-gitlab or rich is
imported inside the functions, so ``registry-cleanup --help`` and ``delete`` stay light.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from registry_cleanup.errors import EXIT_FAILURE, EXIT_OK, InputError

if TYPE_CHECKING:
    from datetime import datetime

    from registry_cleanup.domain.image_age import ImageReader, RegistryImage
    from registry_cleanup.domain.refs import ImageRef
    from registry_cleanup.engine.deletion import DeleteRequest, TagStore
    from registry_cleanup.engine.sweep import SweepOptions, SweepResult
    from registry_cleanup.gitlab import GitLabApi, Repository
    from registry_cleanup.registry.regctl import RegctlSession, TlsMode


@dataclass(frozen=True)
class ApiSettings:
    url: str | None
    project: str | None

    def connect(self) -> GitLabApi:
        from registry_cleanup.gitlab import API_URL_ENV, PROJECT_ENV, Credentials, GitLabApi

        if not self.url:
            raise InputError(f"no GitLab API URL: pass --api-url or set {API_URL_ENV}")
        if not self.project:
            raise InputError(f"no project: pass --project or set {PROJECT_ENV}")
        return GitLabApi(self.url, self.project, Credentials.from_env(os.environ))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class RegistryLogin:
    """Registry credentials for deleting through regctl: one config and one login per run."""

    host: str | None
    username: str | None
    tls: TlsMode
    ca_file: Path | None

    @classmethod
    def from_env(cls, tls: TlsMode) -> RegistryLogin:
        ca_file = os.environ.get("REGISTRY_CLEANUP_CA_FILE")
        return cls(
            host=os.environ.get("CI_REGISTRY"),
            username=os.environ.get("CI_REGISTRY_USER"),
            tls=tls,
            ca_file=Path(ca_file) if ca_file else None,
        )

    @property
    def complete(self) -> bool:
        """Whether the environment has everything a login needs."""
        return bool(self.host and self.username and os.environ.get("CI_REGISTRY_PASSWORD"))

    @contextmanager
    def session(self) -> Iterator[RegctlSession]:
        from registry_cleanup.registry.regctl import HostSettings, RegctlSession

        password = os.environ.get("CI_REGISTRY_PASSWORD")
        if not (self.host and self.username and password):
            raise InputError(
                "--via registry needs CI_REGISTRY, CI_REGISTRY_USER and CI_REGISTRY_PASSWORD"
            )
        with RegctlSession(notice=_stderr) as session:
            session.configure_host(self.host, HostSettings(tls=self.tls, ca_file=self.ca_file))
            session.login(self.host, self.username, password)
            yield session


@dataclass(frozen=True)
class RegistryAccess:
    """A run's ways into the registry: where deletes go (--via registry: one regctl login for
    every repository; None: GitLab's tag endpoint), and the reader of what GitLab cannot say of
    a tag (its age and digest, for an image index), or None without registry credentials."""

    store_for: Callable[[Repository], TagStore] | None
    images: ImageReader | None


@contextmanager
def registry_access(
    deletes: RegistryLogin | None, reads: RegistryLogin | None = None
) -> Iterator[RegistryAccess]:
    """One regctl login at most: the delete session reads too; otherwise one is opened at the
    first read (most sweeps never need one) and closed with the run."""
    if deletes is not None:
        with deletes.session() as session:
            yield RegistryAccess(lambda _: session, session)
        return
    if reads is None or not reads.complete:
        yield RegistryAccess(None, None)
        return
    with ExitStack() as stack:
        yield RegistryAccess(None, _OnFirstRead(reads, stack))


class _OnFirstRead:
    """An ImageReader that logs in to the registry when first asked (thread-safe)."""

    def __init__(self, login: RegistryLogin, stack: ExitStack) -> None:
        self._login = login
        self._stack = stack
        self._lock = threading.Lock()
        self._session: RegctlSession | None = None

    def image(self, ref: ImageRef) -> RegistryImage | None:
        return self._logged_in().image(ref)

    def digest(self, ref: ImageRef) -> str | None:
        return self._logged_in().digest(ref)

    def _logged_in(self) -> RegctlSession:
        with self._lock:
            if self._session is None:
                self._session = self._stack.enter_context(self._login.session())
            return self._session


def run_sweep(
    settings: ApiSettings,
    options: SweepOptions,
    *,
    json_output: bool,
    report: Path | None,
    registry: RegistryLogin | None = None,
    reads: RegistryLogin | None = None,
    plan_out: Path | None = None,
    html: Path | None = None,
) -> int:
    from datetime import UTC, datetime

    from registry_cleanup.engine.sweep import Sweep
    from registry_cleanup.output.progress import progress_for

    api = settings.connect()
    progress = progress_for(sys.stderr, in_ci=in_ci())
    # The plan's time is when its listing began: its age counts from what it saw.
    started = datetime.now(UTC).replace(microsecond=0)
    with registry_access(registry, reads) as access:
        result = Sweep(
            api, options, progress, store_for=access.store_for, images=access.images
        ).run()
    plan = None
    if plan_out is not None:
        from registry_cleanup.output.report import write_document

        plan = _plan(settings, options, result, started)
        write_document(plan_out, plan)
    outputs = _Outputs(json_output, report, html)
    return _show_sweep(result, outputs, api, document=plan)


def _plan(
    settings: ApiSettings, options: SweepOptions, result: SweepResult, started: datetime
) -> dict[str, Any]:
    from registry_cleanup.engine.plan_file import instance_of, plan_document
    from registry_cleanup.output.sweep_table import as_document

    return plan_document(
        as_document(result),
        instance=instance_of(settings.url or ""),
        project=settings.project or "",
        repositories=result.repositories,
        options=options,
        created_at=started,
    )


def run_apply(
    settings: ApiSettings,
    plan_path: Path,
    *,
    max_age: str,
    trust_branch_list: bool,
    concurrency: int | None,
    json_output: bool,
    report: Path | None,
    registry: RegistryLogin | None = None,
    reads: RegistryLogin | None = None,
    html: Path | None = None,
) -> int:
    """``sweep --apply``: check the plan against this instance, project and time, then apply."""
    from datetime import UTC, datetime

    from registry_cleanup.domain.durations import parse_duration
    from registry_cleanup.engine.apply import apply_plan
    from registry_cleanup.engine.plan_file import check_plan, instance_of, read_plan
    from registry_cleanup.output.progress import progress_for

    limit = parse_duration(max_age, option="--max-plan-age")
    plan = read_plan(plan_path)
    api = settings.connect()  # no request yet: it only checks the URL, project and token
    check_plan(
        plan,
        instance=instance_of(settings.url or ""),
        project=settings.project or "",
        now=datetime.now(UTC),
        max_age=limit,
    )
    progress = progress_for(sys.stderr, in_ci=in_ci())

    def now() -> datetime:
        return datetime.now(UTC)

    with registry_access(registry, reads) as access:
        result = apply_plan(
            api,
            plan,
            progress,
            now=now,
            trust_branch_list=trust_branch_list,
            concurrency=concurrency,
            store_for=access.store_for,
            images=access.images,
        )
    from registry_cleanup.output.sweep_table import as_document

    applied = {
        **as_document(result),
        "kind": "apply",
        "plan": {"file": str(plan_path), "created_at": plan.created_at.isoformat()},
    }
    return _show_sweep(result, _Outputs(json_output, report, html), api, document=applied)


@dataclass(frozen=True)
class _Outputs:
    json_output: bool
    report: Path | None
    html: Path | None


def _show_sweep(
    result: SweepResult,
    outputs: _Outputs,
    api: GitLabApi,
    *,
    document: dict[str, Any] | None = None,
) -> int:
    """A sweep's (plan's, apply's) report file, page, table or JSON, notes, guard, summary."""
    from registry_cleanup.output.report import write_document
    from registry_cleanup.output.sweep_table import as_document, print_table, summary_line

    shown = document if document is not None else as_document(result)
    if outputs.report is not None:
        write_document(outputs.report, shown)
    if outputs.html is not None:
        from registry_cleanup.output.page import write_html

        sizes = {repo.location: api.registry.size(repo) for repo in result.repositories}
        write_html(outputs.html, shown, sizes)
    if outputs.json_output:
        typer.echo(json.dumps(shown, indent=2))
    else:
        print_table(result, sys.stdout)
    for note in result.notes:
        _stderr(f"note: {note}")
    if result.refusal is not None:
        verb = "refusing to delete" if not result.dry_run else "a sweep --delete would refuse"
        _stderr(f"{verb}: {result.refusal}")
    if result.guard is not None:
        if result.refused and result.refusal is None:
            _stderr(
                f"refusing to delete: the branch list looks broken: {result.guard}. "
                "If it is right, run again with --trust-branch-list"
            )
        else:
            _stderr(f"warning: the branch list looks broken: {result.guard}")
    _stderr(summary_line(result))
    return EXIT_FAILURE if result.failed else EXIT_OK


def find_repository(api: GitLabApi, name: str | None) -> Repository:
    """The project's repository by path, location or id; the only one when name is None."""
    repositories = api.repositories()
    if name is None:
        if len(repositories) == 1:
            return repositories[0]
        known = ", ".join(r.path for r in repositories) or "none"
        raise InputError(
            f"the project has {len(repositories)} repositories ({known}); pass --repository"
        )
    for repository in repositories:
        if name in (repository.path, repository.location, str(repository.id)):
            return repository
    known = ", ".join(r.path for r in repositories) or "none"
    raise InputError(
        f"no container repository {name!r} in project {api.project_ref} (it has: {known})"
    )


def run_delete_via_api(
    settings: ApiSettings,
    request: DeleteRequest,
    json_output: bool,
    *,
    report: Path | None = None,
    reads: RegistryLogin | None = None,
) -> int:
    """``delete --via api``: deletion.delete_tag's steps over GitLab's single-tag endpoint."""
    from registry_cleanup.engine.deletion import delete_tag
    from registry_cleanup.gitlab.tag_store import ApiTagStore
    from registry_cleanup.output.report import delete_document, write_document

    api = settings.connect()
    location = request.target.repository_ref
    repository = find_repository(api, location)
    with registry_access(None, reads) as access:
        outcome = delete_tag(request, ApiTagStore(api, repository, images=access.images))
    if report is not None:
        document = delete_document(outcome, request.target, dry_run=request.dry_run)
        write_document(report, document)
    if json_output:
        typer.echo(outcome.as_json())
    elif not outcome.status.is_failure:
        typer.echo(outcome.as_line())
    if outcome.status.is_failure:
        _stderr(outcome.reason)
        return EXIT_FAILURE
    return EXIT_OK


def run_bulk_delete(
    settings: ApiSettings,
    repository_name: str | None,
    *,
    name_regex_delete: str,
    name_regex_keep: str | None,
    keep_n: int | None,
    older_than: str | None,
) -> int:
    from registry_cleanup.gitlab import GitLabApiError

    api = settings.connect()
    repository = find_repository(api, repository_name)
    try:
        sent = api.registry.bulk_delete(
            repository,
            name_regex_delete=name_regex_delete,
            name_regex_keep=name_regex_keep,
            keep_n=keep_n,
            older_than=older_than,
        )
    except GitLabApiError as error:
        if error.status == 400 and "once an hour" in str(error):
            _stderr(
                f"{error}. GitLab accepts one bulk delete per repository per hour; the "
                "previous request is still within its hour. Try again later, or use "
                "'registry-cleanup sweep --delete', which deletes tag by tag"
            )
            return EXIT_FAILURE
        raise
    typer.echo(
        f"scheduled: GitLab accepted the bulk delete for {repository.location} (HTTP 202); "
        "it runs in the background and never deletes 'latest'"
    )
    # Exactly what GitLab received: the regexes grouped so they mean the whole tag there.
    typer.echo(f"sent: {_sent_line(sent)}")
    return EXIT_OK


def _sent_line(sent: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in sent.items())


def run_delete_repository(settings: ApiSettings, repository_name: str | None, yes: bool) -> int:
    api = settings.connect()
    repository = find_repository(api, repository_name)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(
                f"deleting {repository.location} and all its tags needs confirmation; "
                "pass --yes (no terminal to ask at)"
            )
        question = f"Delete container repository {repository.location} and ALL its tags?"
        if not typer.confirm(question, default=False):
            _stderr("not confirmed; nothing was deleted")
            return EXIT_FAILURE
    api.registry.delete(repository)
    typer.echo(f"scheduled: GitLab is deleting {repository.location} (HTTP 202)")
    return EXIT_OK


def run_policy_show(settings: ApiSettings, json_output: bool) -> int:
    _print_policy(settings.connect().settings.policy(), json_output)
    return EXIT_OK


def run_policy_set(settings: ApiSettings, attributes: dict[str, Any], json_output: bool) -> int:
    from registry_cleanup.domain.policy import validate

    changes = validate(attributes)
    if not changes:
        raise InputError("nothing to change; pass at least one of the policy options")
    _print_policy(settings.connect().settings.set_policy(changes), json_output)
    regexes: dict[str, Any] = {
        key: changes[key] for key in ("name_regex", "name_regex_keep") if key in changes
    }
    if regexes:
        # On stderr, so that --json stays one document; the grouping is what GitLab stores.
        _stderr(f"sent: {_sent_line(regexes)}")
    return EXIT_OK


def _print_policy(policy: dict[str, Any], json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps(policy, indent=2, sort_keys=True))
        return
    for key in sorted(policy):
        typer.echo(f"{key}: {policy[key]}")


def _stderr(message: str) -> None:
    typer.echo(f"registry-cleanup: {message}", err=True)


# -- group scope ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSettings:
    url: str | None
    group: str

    def connect(self) -> Any:  # noqa: ANN401 (GitLabGroupApi; imported lazily)
        from registry_cleanup.gitlab import API_URL_ENV, Credentials, GitLabGroupApi, TokenKind

        if not self.url:
            raise InputError(f"no GitLab API URL: pass --api-url or set {API_URL_ENV}")
        credentials = Credentials.from_env(os.environ)
        if credentials.kind is TokenKind.job:
            # lib/api/group_container_repositories.rb takes no job token (no job_token_allowed).
            raise InputError(
                "a CI job token cannot list a group's projects; set GITLAB_TOKEN (or name a "
                "variable in REGISTRY_CLEANUP_TOKEN_VARIABLE) to a group access token with "
                "the Maintainer role and the api scope"
            )
        return GitLabGroupApi(self.url, self.group, credentials)


def run_group_sweep(
    settings: GroupSettings,
    selection: Any,  # noqa: ANN401 (group_sweep.ProjectSelection)
    options: SweepOptions,
    *,
    json_output: bool,
    report: Path | None,
    registry: RegistryLogin | None = None,
    reads: RegistryLogin | None = None,
) -> int:
    from registry_cleanup.engine.group_sweep import GroupSweep, SilentProgress
    from registry_cleanup.engine.sweep import Sweep
    from registry_cleanup.output.group_report import as_document, print_tables, summary_lines
    from registry_cleanup.output.progress import progress_for
    from registry_cleanup.output.report import write_document

    api = settings.connect()
    progress = progress_for(sys.stderr, in_ci=in_ci())
    with registry_access(registry, reads) as access:
        result = GroupSweep(
            api,
            selection,
            options,
            progress,
            sweep_for=lambda project_api, opts: Sweep(
                project_api,
                opts,
                SilentProgress(),
                store_for=access.store_for,
                images=access.images,
            ),
        ).run()
    document = as_document(result)
    if report is not None:
        write_document(report, document)
    if json_output:
        typer.echo(json.dumps(document, indent=2))
    else:
        print_tables(document, sys.stdout)
    for outcome in result.projects:
        if outcome.result is not None:
            for note in outcome.result.notes:
                _stderr(f"note: project {outcome.project}: {note}")
    for line in summary_lines(document):
        _stderr(line)
    return EXIT_FAILURE if result.failed else EXIT_OK


def run_group_pipeline(
    settings: GroupSettings,
    selection: Any,  # noqa: ANN401 (group_sweep.ProjectSelection)
    pipeline: Any,  # noqa: ANN401 (group_pipeline.ChildPipelineSettings)
    output: Path,
) -> int:
    from registry_cleanup.engine.group_pipeline import batches, child_pipeline
    from registry_cleanup.engine.group_sweep import listed_projects

    group_path, projects = listed_projects(settings.connect(), selection)
    document = child_pipeline(group_path, projects, pipeline)
    output.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: GitLab reads it as the child pipeline, and the image needs no YAML library.
    output.write_text(json.dumps(document, indent=2) + "\n")
    jobs = len(batches(projects, pipeline.max_jobs))
    _stderr(
        f"group {group_path}: {len(projects)} projects with container repositories, "
        f"{jobs} sweep jobs; child pipeline written to {output}"
    )
    return EXIT_OK


def run_merge_reports(
    group: str, reports: Path, expected: list[str], output: Path | None, json_output: bool
) -> int:
    from registry_cleanup.output.group_report import merge_reports, summary_lines
    from registry_cleanup.output.report import write_document

    if not reports.is_dir():
        raise InputError(f"--reports {reports} is not a directory")
    document = merge_reports(group, sorted(reports.glob("*.json")), expected)
    if output is not None:
        write_document(output, document)
    if json_output:
        typer.echo(json.dumps(document, indent=2))
    for line in summary_lines(document):
        _stderr(line)
    return EXIT_FAILURE if document["failed_projects"] else EXIT_OK
