"""Protected container tag rules (lib/api/project_container_registry_protection_tag_rules.rb)."""

from __future__ import annotations

import gitlab

from registry_cleanup.domain.safety import ACCESS_LEVELS, GitLabTagRule
from registry_cleanup.gitlab.client import PER_PAGE, GitLabApiError, GitLabClient, Role


def protected_tag_rules(
    client: GitLabClient, project_ref: str, where: str
) -> list[GitLabTagRule] | None:
    """Protected container tag rules, or None when this token may not read them.

    GitLab 18.7; Maintainer, admin_container_image. Lists the mutable rules only: immutable tag
    rules (Ultimate) stay invisible here, and GitLab refuses their deletes (403) at delete
    time."""
    path = f"/projects/{gitlab.utils.EncodedId(project_ref)}/registry/protection/tag/rules"
    try:
        with client.errors("read protected container tag rules", Role.maintainer, where):
            rules = client.gl.http_list(path, iterator=True, per_page=PER_PAGE)
            return [
                GitLabTagRule(
                    tag_name_pattern=str(rule["tag_name_pattern"]),
                    minimum_access_level_for_delete=_level_name(
                        rule.get("minimum_access_level_for_delete")
                    ),
                )
                for rule in rules
            ]
    except GitLabApiError as error:
        if error.status in (401, 403, 404):
            return None
        raise


def _level_name(value: object) -> str | None:
    """A rule's access level as a name: GitLab sends the enum's name; a number is mapped."""
    if value is None:
        return None
    if isinstance(value, int):
        return next((name for name, level in ACCESS_LEVELS.items() if level == value), str(value))
    return str(value).lower()
