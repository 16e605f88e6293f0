"""lib/api/projects.rb: ``GET /projects/:id`` and ``PUT /projects/:id`` (api/projects/).

Neither route has ``route_setting :authentication, job_token_allowed: true``, so a CI job token
sent to them is ignored and the request is anonymous: a private project answers
"404 Project Not Found" (lib/gitlab/auth/auth_finders.rb find_user_from_job_token; the job
token docs, ci/jobs/ci_job_token/#job-token-access, do not list the Projects API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import re2

from tests.fakes.emulator_core import (
    PERSONAL,
    Answer,
    ApiError,
    Caller,
    Project,
    Request,
    Role,
    Route,
    authorize,
    route,
    user_project,
)

if TYPE_CHECKING:
    from tests.fakes.gitlab_emulator import GitLabEmulator

# ContainerExpirationPolicy (app/models/container_expiration_policy.rb) allowed values;
# api/projects/#edit-a-project, container_expiration_policy_attributes.
POLICY_CADENCES = ("1d", "7d", "14d", "1month", "3month")
POLICY_KEEP_N = (1, 5, 10, 25, 50, 100)
POLICY_OLDER_THAN = ("7d", "14d", "30d", "90d")


def project_json(emulator: GitLabEmulator, project: Project, role: Role) -> dict[str, Any]:
    """Entities::ProjectWithAccess, the fields registry-cleanup reads."""
    return {
        "id": project.id,
        "name": project.path,
        "path": project.path,
        "path_with_namespace": project.path_with_namespace,
        "default_branch": project.default_branch,
        "container_registry_enabled": True,
        "container_registry_image_prefix": (
            f"{emulator.store.registry.host}/{project.path_with_namespace}"
        ),
        "container_expiration_policy": dict(project.policy),
        "permissions": {"project_access": {"access_level": int(role)}, "group_access": None},
    }


def _get_project(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    project, role = user_project(emulator, GET_PROJECT, caller, params["id"])
    return 200, project_json(emulator, project, role), {}


GET_PROJECT = route(
    "GET",
    "/projects/:id",
    tokens=PERSONAL,
    source="lib/api/projects.rb get ':id' (no job_token_allowed)",
)(_get_project)


def _put_project(
    emulator: GitLabEmulator, request: Request, params: dict[str, str], caller: Caller
) -> Answer:
    # put ':id': authorize_admin_project -> Maintainer (user/permissions/).
    project, role = user_project(emulator, PUT_PROJECT, caller, params["id"])
    authorize(role, Role.maintainer)
    attributes = request.body.get("container_expiration_policy_attributes")
    if attributes is None:
        attributes = {
            key[len("container_expiration_policy_attributes[") : -1]: value
            for key, value in request.body.items()
            if key.startswith("container_expiration_policy_attributes[")
        }
    errors = policy_errors(attributes)
    if errors:
        raise ApiError(400, errors)
    updated = dict(project.policy)
    for key, value in attributes.items():
        if key == "keep_n":
            updated[key] = int(value)
        elif key == "enabled":
            updated[key] = value in (True, "true", "1", 1)
        else:
            updated[key] = value
    project.policy = updated
    return 200, project_json(emulator, project, role), {}


PUT_PROJECT = route(
    "PUT",
    "/projects/:id",
    tokens=PERSONAL,
    source="lib/api/projects.rb put ':id' (no job_token_allowed)",
)(_put_project)


def policy_errors(attributes: dict[str, Any]) -> dict[str, list[str]]:
    """Validation of container_expiration_policy_attributes (ContainerExpirationPolicy).

    name_regex and name_regex_keep are ``untrusted_regexp`` (RE2); GitLab later builds them as
    ``\\A#{regex}\\z`` (cleanup_tags_base_service.rb), so they must compile on their own.
    """
    errors: dict[str, list[str]] = {}
    checks: dict[str, tuple[object, ...]] = {
        "cadence": POLICY_CADENCES,
        "older_than": POLICY_OLDER_THAN,
    }
    for key, allowed in checks.items():
        if key in attributes and attributes[key] not in allowed:
            errors[f"container_expiration_policy.{key}"] = ["is not included in the list"]
    if "keep_n" in attributes:
        try:
            keep_n = int(attributes["keep_n"])
        except (TypeError, ValueError):
            keep_n = -1
        if keep_n not in POLICY_KEEP_N:
            errors["container_expiration_policy.keep_n"] = ["is not included in the list"]
    for key in ("name_regex", "name_regex_keep"):
        value = attributes.get(key)
        if value:
            try:
                re2.compile(value)
            except re2.error:
                errors[f"container_expiration_policy.{key}"] = ["not valid RE2 syntax"]
    return errors


ROUTES: list[Route] = [GET_PROJECT, PUT_PROJECT]
