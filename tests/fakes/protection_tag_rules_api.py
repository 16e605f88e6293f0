"""lib/api/project_container_registry_protection_tag_rules.rb.

Docs: api/container_repository_protection_rules/ and
user/packages/container_registry/protected_container_tags/.

``GET /projects/:id/registry/protection/tag/rules``: "This feature was introduced in GitLab
18.7." (the route's ``detail``); older versions have no such route and answer GitLab's catch-all
404 ``{"error": "404 Not Found"}`` (lib/api/api.rb ``route :any, '*path'``).
- ``after_validation { authenticate! }``: no job_token_allowed, so a job token is ignored and
  the anonymous request gets "401 Unauthorized".
- ``authorize! :admin_container_image, user_project``: Maintainer, else "403 Forbidden".
- ``present user_project.container_registry_protection_tag_rules.mutable``: every mutable rule,
  not paginated (no ``paginate``), so no pagination headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fakes.emulator_core import (
    PERSONAL,
    Answer,
    Caller,
    Request,
    Role,
    Route,
    authenticate,
    authorize,
    route,
    user_project,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

INTRODUCED = (18, 7)


def _list_tag_rules(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    authenticate(caller)
    project, role = user_project(emulator, LIST_TAG_RULES, caller, params["id"])
    authorize(role, Role.maintainer)
    body = [
        {
            "id": rule.id,
            "project_id": project.id,
            "tag_name_pattern": rule.tag_name_pattern,
            "minimum_access_level_for_push": rule.minimum_access_level_for_push,
            "minimum_access_level_for_delete": rule.minimum_access_level_for_delete,
        }
        for rule in project.tag_rules
        if rule.mutable
    ]
    return 200, body, {}


LIST_TAG_RULES = route(
    "GET",
    "/projects/:id/registry/protection/tag/rules",
    tokens=PERSONAL,
    since=INTRODUCED,
    source="lib/api/project_container_registry_protection_tag_rules.rb (authenticate!)",
)(_list_tag_rules)

ROUTES: list[Route] = [LIST_TAG_RULES]
