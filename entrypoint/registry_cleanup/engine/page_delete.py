"""Deleting a listing page's tags in one request: the optional batch capability of a store.

GitLab's GraphQL lists a repository's tags 20 to a page and deletes up to 20 in one mutation.
Where the sweep listed a repository that way, its planned deletions go a page at a time: the
page is read again, the tags still at their planned digest are deleted in one request, and
everything this cannot settle goes through the per-tag safe delete (``deletion.delete_tag``),
which says exactly why. Two requests for up to 20 tags, where the per-tag path takes two each.

The invariant is the per-tag path's: a tag is deleted only if it points, as just read, at the
digest the plan read before the ref lists that made it an orphan. How it holds here:

- **Both ends, both cursors.** The listing reads a chain of pages from each end (ascending and
  descending names). A page is read again from its own cursor: graphql-ruby's offset without
  the registry metadata database, the last tag name with it. Either way the page read again
  holds the tags now at that position, each with its current digest, and only tags found on it
  at the planned digest are sent; a tag not on it any more takes the per-tag path.
- **A tag seen twice** (where the two chains met) belongs to the last page the sweep's listing
  put it on (``sweep._by_page``); it is sent with that page only.
- **Order.** The sweep starts each chain's pages from the far end (``TagPage.position``,
  highest first), so with one request in flight deleting tags never shifts a page still to be
  read again under an offset cursor. With several in flight an earlier page's deletes can shift
  a later page while it is read again: its tags then come back on another page or not at all,
  and take the per-tag path. Slower, never unsafe: what is sent was just read at its planned
  digest.
- **The single-tag fallback** reads the tag again over REST and deletes only at the planned
  digest; after a lost answer to the mutation, a tag now gone counts as deleted.

One round trip of exposure remains, as on every path: GitLab has no conditional delete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from registry_cleanup.domain.safety import verdict
from registry_cleanup.engine.deletion import DELETED, DeleteRequest, repushed
from registry_cleanup.engine.outcome import Outcome, Result
from registry_cleanup.errors import StoreError

# The listing page a store reads again; the store's own type (GitLab's GraphQL page).
P = TypeVar("P", contravariant=True)

LOST_ANSWER = "tag deleted (GitLab's answer to the delete was lost, but the tag is gone)"


@runtime_checkable
class PageDeletes(Protocol[P]):
    """A store that can read one listing page again and delete up to 20 of its tags at once."""

    def digests_on(self, page: P) -> dict[str, str]:
        """The tags now on the page, with their digests ("" where unknown)."""
        ...

    def delete_names(self, names: Sequence[str]) -> set[str]:
        """Delete the named tags in one request; the names the store says it deleted."""
        ...


def delete_page(
    requests: Sequence[DeleteRequest],
    page: P,
    store: PageDeletes[P],
    one: Callable[[DeleteRequest], Outcome],
) -> list[tuple[DeleteRequest, Outcome]]:
    """The outcome of each request, deleted a page at a time where it can be; ``one`` is the
    per-tag safe delete for the rest."""
    done: list[tuple[DeleteRequest, Outcome]] = []
    pending: list[DeleteRequest] = []
    for request in requests:
        allowed = verdict(request.target.tag, request.rules)
        if allowed.allowed:
            pending.append(request)
        else:
            done.append((request, _outcome(request, Result.kept, allowed.reason)))
    if not pending:
        return done
    try:
        now = store.digests_on(page)
    except StoreError:
        return done + [(request, one(request)) for request in pending]
    send: list[DeleteRequest] = []
    for request in pending:
        current, planned = now.get(request.target.tag), request.expect_digest
        if not current or not planned:  # not on this page, or a digest unknown
            done.append((request, one(request)))
        elif current != planned:
            changed = _outcome(request, Result.changed, repushed(current, planned), current)
            done.append((request, changed))
        else:
            send.append(request)
    if not send:
        return done
    try:
        deleted = store.delete_names([request.target.tag for request in send])
    except StoreError:
        # The answer may have been lost after the store deleted some: look at each one.
        return done + [(request, _after_lost_answer(request, one)) for request in send]
    for request in send:
        if request.target.tag in deleted:
            done.append((request, _outcome(request, Result.deleted, DELETED)))
        else:
            done.append((request, one(request)))
    return done


def _after_lost_answer(request: DeleteRequest, one: Callable[[DeleteRequest], Outcome]) -> Outcome:
    """The batch delete failed, perhaps after deleting: a tag now gone was ours to delete."""
    outcome = one(request)
    if outcome.result is not Result.absent:
        return outcome
    return _outcome(request, Result.deleted, LOST_ANSWER, outcome.digest)


def _outcome(
    request: DeleteRequest, result: Result, reason: str, digest: str | None = None
) -> Outcome:
    target = request.target
    return Outcome(
        ref=str(target),
        tag=target.tag,
        digest=digest if digest is not None else request.expect_digest,
        result=result,
        reason=reason,
    )
