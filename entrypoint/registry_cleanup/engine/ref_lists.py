"""What the ref lists say: the branches, the git tags (whose tag pipelines push their slugs),
the default branch and GitLab's protected container tag rules, read side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from registry_cleanup.domain.safety import GitLabTagRule
from registry_cleanup.gitlab import GitLabApi, GitLabApiError, NotFoundError


@dataclass(frozen=True)
class Refs:
    """What the ref lists said: a tag whose slug is a live ref's is kept."""

    branches: tuple[str, ...]
    git_tags: tuple[str, ...]
    default_branch: str | None
    tag_rules: list[GitLabTagRule] | None
    # Why nothing may be deleted (the git tags could not be listed), or None.
    refusal: str | None = None

    def union(self, later: Refs) -> Refs:
        """Both listings' refs: an orphan is a tag neither listing has a ref for."""
        return replace(
            self,
            branches=tuple(dict.fromkeys(self.branches + later.branches)),
            git_tags=tuple(dict.fromkeys(self.git_tags + later.git_tags)),
            refusal=later.refusal or self.refusal,
        )


def read_refs(api: GitLabApi, *, with_rules: bool) -> Refs:
    """Branches and git tags, and GitLab's protected container tag rules with the first
    listing, all at once."""
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="refs") as pool:
        branch_listing = pool.submit(lambda: list(api.refs.branches()))
        git_tag_listing = pool.submit(_list_git_tags, api)
        tag_rule_listing = pool.submit(api.protected_tag_rules) if with_rules else None
        branch_list = branch_listing.result()
        git_tag_answer = git_tag_listing.result()
        tag_rules = tag_rule_listing.result() if tag_rule_listing is not None else None
    branches = tuple(branch.name for branch in branch_list)
    git_tags, refusal = _git_tags(list(branches), git_tag_answer)
    return Refs(
        branches=branches,
        git_tags=tuple(git_tags),
        default_branch=next((b.name for b in branch_list if b.default), None),
        tag_rules=tag_rules,
        refusal=refusal,
    )


def _list_git_tags(api: GitLabApi) -> list[str] | GitLabApiError:
    """The git tag list, or GitLab's refusal (read alongside the branches, judged after)."""
    try:
        return list(api.refs.git_tags())
    except GitLabApiError as error:
        return error


def _git_tags(
    branches: list[str], answer: list[str] | GitLabApiError
) -> tuple[list[str], str | None]:
    """The git tags, whose tag pipelines push their slugs. If GitLab will not list them
    (a token that may not read the repository, or one GitLab does not take there), any
    orphan may be a tag pipeline's image: nothing is deleted then."""
    if not isinstance(answer, GitLabApiError):
        return answer, None
    if isinstance(answer, NotFoundError):
        if not branches:
            return [], None  # no repository (lib/api/tags.rb: not_found! unless repo_exists?)
        # Branches were listed, so the repository exists: this 404 is GitLab not taking
        # the token here (a job token where it is not allowed is anonymous).
        return [], (
            "GitLab answered 404 to the git tag list although the branches were listed "
            "(it did not take this token there); without the git tags, any tag without a "
            "branch may be a tag pipeline's image, so nothing is deleted (use an access "
            "token with the Reporter role)"
        )
    return [], (
        f"{answer}; without the git tags, any tag without a branch may be a tag "
        "pipeline's image, so nothing is deleted (use a token that may read the "
        "repository: Reporter, or a job token from GitLab 18.3)"
    )
