"""lib/api/branches.rb: ``GET /projects/:id/repository/branches`` (api/branches/).

Job tokens: the job token docs (ci/jobs/ci_job_token/#job-token-access, "Branches API: Can
access the GET /projects/:id/repository/branches endpoint") list it, added with the
"Repository" job token resource (gitlab-org/gitlab#555868, July 2025: GitLab 18.3). The
version is not in the source itself; the emulator takes 18.3 and below it ignores the job
token (anonymous: 404 for a private project). A job token reaches its own project only
(Ci::JobToken::Scope; lib/api/helpers.rb handle_job_token_failure!).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fakes.emulator_core import (
    PERSONAL_OR_JOB,
    Answer,
    Caller,
    Request,
    Route,
    authorize_read_code,
    paginate,
    route,
    user_project,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

JOB_TOKEN_SINCE = (18, 3)


def _list_branches(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    # before { authorize! :read_code, user_project }: Reporter in a private project.
    project, role = user_project(emulator, LIST_BRANCHES, caller, params["id"])
    authorize_read_code(project, role)
    names = sorted(project.branches)
    search = request.query.get("search")
    if search:
        names = [n for n in names if search.lower() in n.lower()]
    chunk, headers = paginate(request, names)
    body = [
        {
            "name": name,
            "merged": False,
            "protected": name in project.protected_branches,
            "default": name == project.default_branch,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": True,
            "web_url": f"http://gitlab.example/{project.path_with_namespace}/-/tree/{name}",
            "commit": {"id": "0" * 40, "short_id": "0" * 8, "title": "emulated"},
        }
        for name in chunk
    ]
    return 200, body, headers


LIST_BRANCHES = route(
    "GET",
    "/projects/:id/repository/branches",
    tokens=PERSONAL_OR_JOB,
    job_token_since=JOB_TOKEN_SINCE,
    source="lib/api/branches.rb route_setting :authentication, job_token_allowed: true",
)(_list_branches)

ROUTES: list[Route] = [LIST_BRANCHES]
