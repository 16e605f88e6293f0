"""The only package that talks to the GitLab API (REST and GraphQL), through python-gitlab.

``client`` holds the session, the token, errors and GraphQL; each other module is one
resource, as python-gitlab's v4/objects are: ``refs`` (branches, git tags), ``registry``
(container repositories and their tags over REST), ``tag_pages`` (tags through GraphQL),
``settings`` (the project record and cleanup policy), ``protection`` (protected container tag
rules), ``groups``; ``project`` puts one project's resources together.

Imported only inside the commands that need it, so ``registry-cleanup --help`` and the
registry-path ``delete`` never load python-gitlab.
"""

from registry_cleanup.gitlab.client import (
    API_URL_ENV,
    JOB_TOKEN_ENV,
    PROJECT_ENV,
    TOKEN_ENV,
    TOKEN_VARIABLE_ENV,
    Credentials,
    GitLabApiError,
    GitLabClient,
    NotFoundError,
    Role,
    TokenKind,
    base_url,
)
from registry_cleanup.gitlab.groups import GitLabGroupApi, GroupRepository
from registry_cleanup.gitlab.project import GitLabApi
from registry_cleanup.gitlab.refs import Branch
from registry_cleanup.gitlab.registry import Repository, TagDetail
from registry_cleanup.gitlab.tag_pages import GRAPHQL_PAGE, TagListing, TagPage

__all__ = [
    "API_URL_ENV",
    "GRAPHQL_PAGE",
    "JOB_TOKEN_ENV",
    "PROJECT_ENV",
    "TOKEN_ENV",
    "TOKEN_VARIABLE_ENV",
    "Branch",
    "Credentials",
    "GitLabApi",
    "GitLabApiError",
    "GitLabClient",
    "GitLabGroupApi",
    "GroupRepository",
    "NotFoundError",
    "Repository",
    "Role",
    "TagDetail",
    "TagListing",
    "TagPage",
    "TokenKind",
    "base_url",
]
