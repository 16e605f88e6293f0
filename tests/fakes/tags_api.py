"""lib/api/tags.rb: ``GET /projects/:id/repository/tags``, the project's git tags (api/tags/).

What lib/api/tags.rb says:
- ``before { authorize_read_code! }``: Reporter in a private project.
- the list has ``route_setting :authentication, job_token_allowed: true`` and
  ``route_setting :authorization, job_token_policies: :read_repositories``: a job token of the
  same project reads it with the pipeline user's role. The single tag
  (``GET .../tags/:tag_name``) has no such setting (gitlab-org/gitlab#568868: 403 with a job
  token; MR !216463 proposes it), so the emulator serves only the list.
- The version: the job token docs (ci/jobs/ci_job_token/#job-token-access, "Tags API: Can
  access the GET /projects/:id/repository/tags endpoint") list it with the other "Repository"
  job token endpoints of gitlab-org/gitlab#555868 (July 2025), so 18.3, as for branches. The
  source carries no version; below 18.3 the job token is ignored (anonymous: 404).
- order: ``order_by`` updated (default) | name | version, ``sort`` desc (default) | asc.
- Entities::Tag: name, message, target, commit, release, protected, created_at (null for
  lightweight tags).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.emulator_core import (
    PERSONAL_OR_JOB,
    Answer,
    ApiError,
    Caller,
    GitTag,
    Request,
    Route,
    authorize_read_code,
    iso,
    paginate,
    route,
    user_project,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

JOB_TOKEN_SINCE = (18, 3)


def tag_json(tag: GitTag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "message": tag.message,
        "target": tag.target,
        "commit": {
            "id": tag.target,
            "short_id": tag.target[:8],
            "title": "emulated",
            "created_at": iso(tag.created_at),
            "committed_date": iso(tag.created_at),
        },
        "release": None,
        "protected": tag.protected,
        # Annotated tags carry their creation time; lightweight tags have none.
        "created_at": iso(tag.created_at) if tag.message is not None else None,
    }


def _list_tags(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    project, role = user_project(emulator, LIST_GIT_TAGS, caller, params["id"])
    authorize_read_code(project, role)
    order_by = request.query.get("order_by", "updated")
    sort = request.query.get("sort", "desc")
    if order_by not in ("name", "updated", "version") or sort not in ("asc", "desc"):
        raise ApiError(400, {"error": "order_by, sort does not have a valid value"})
    tags = list(project.git_tags)
    if order_by == "name":
        tags.sort(key=lambda t: t.name)
    else:
        # updated: the commit date; version is treated the same (no version parsing here).
        tags.sort(key=lambda t: (t.created_at, t.name))
    if sort == "desc":
        tags.reverse()
    search = request.query.get("search")
    if search:
        tags = [t for t in tags if _search_matches(search, t.name)]
    chunk, headers = paginate(request, tags)
    return 200, [tag_json(tag) for tag in chunk], headers


def _search_matches(search: str, name: str) -> bool:
    # TagsFinder: ^term is a prefix, term$ a suffix, else a substring (doc/api/tags.md).
    if search.startswith("^"):
        return name.startswith(search[1:])
    if search.endswith("$"):
        return name.endswith(search[:-1])
    return search in name


LIST_GIT_TAGS = route(
    "GET",
    "/projects/:id/repository/tags",
    tokens=PERSONAL_OR_JOB,
    job_token_since=JOB_TOKEN_SINCE,
    source="lib/api/tags.rb route_setting :authentication, job_token_allowed: true",
)(_list_tags)

ROUTES: list[Route] = [LIST_GIT_TAGS]
