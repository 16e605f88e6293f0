"""The one safe delete: check protection, resolve, compare with the planned digest, delete,
and recover (a lost answer, regctl's clobbered placeholder, a dangling entry).

Every path that deletes a tag goes through ``delete_tag``. The store is reached through the
small ``TagStore`` protocol, so the same steps serve regctl (the registry API) and GitLab's
REST tag endpoint; stores raise ``StoreError`` and nothing here knows either adapter.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from registry_cleanup.domain.plan import DIGEST_UNKNOWN
from registry_cleanup.domain.refs import ImageRef
from registry_cleanup.domain.safety import ProtectionRules, verdict
from registry_cleanup.engine.outcome import Outcome, Result
from registry_cleanup.errors import CleanupError, Failure, InputError, StoreError

DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


def parse_digest(text: str, *, option: str = "--expect-digest") -> str:
    if DIGEST_PATTERN.fullmatch(text) is None:
        raise InputError(f"{option} {text!r} is not a digest; expected sha256: and 64 hex digits")
    return text


class TagStore(Protocol):
    """Where a tag lives: what it points at, and deleting it (raising ``StoreError``)."""

    def digest(self, ref: ImageRef) -> str | None: ...
    def tag_rm(self, ref: ImageRef) -> None: ...


@runtime_checkable
class Repairable(TagStore, Protocol):
    """A store whose delete can leave a tag half done, and which can point a tag back.

    The registry API through regctl: a registry without the OCI tag delete makes regctl push a
    placeholder and delete that, and distribution 2.8 can leave a tag entry whose manifest is
    gone (listed, yet unresolvable). GitLab's tag endpoint does neither, so its store is not
    repairable and the recovery below only looks at the tag again."""

    def is_listed(self, ref: ImageRef) -> bool: ...
    def is_placeholder(self, ref: ImageRef) -> bool: ...
    def copy(self, source: str, target: ImageRef) -> None: ...


def _listed(store: TagStore, ref: ImageRef) -> bool:
    """Whether a tag the store cannot resolve is still listed (a dangling entry)."""
    return isinstance(store, Repairable) and store.is_listed(ref)


def _on_placeholder(store: TagStore, ref: ImageRef) -> bool:
    return isinstance(store, Repairable) and store.is_placeholder(ref)


def _point_back(store: TagStore, target: ImageRef, original: str) -> None:
    # Reached only where _listed or _on_placeholder was true, so only for a Repairable store.
    if not isinstance(store, Repairable):
        raise CleanupError(f"{target} cannot be pointed back at {original} through this store")
    store.copy(target.at_digest(original), target)


@dataclass(frozen=True)
class DeleteRequest:
    target: ImageRef
    rules: ProtectionRules
    expect_digest: str | None = None
    dry_run: bool = False
    # Set when the job itself runs for the default branch: nothing is deleted then.
    default_branch_pipeline: str | None = None
    # A sweep's deletion: only at the digest its plan read, so none without one.
    digest_required: bool = False


def delete_tag(request: DeleteRequest, store: TagStore) -> Outcome:
    """Carry out one deletion and return its outcome.

    A refused or failed delete is an outcome (status failed, tag as before); errors that stop
    us from even looking at the tag (bad credentials, unreachable registry) are raised.
    """
    target = request.target

    def outcome(result: Result, reason: str, digest: str | None = None) -> Outcome:
        return Outcome(ref=str(target), tag=target.tag, digest=digest, result=result, reason=reason)

    if request.digest_required and request.expect_digest is None:
        return outcome(Result.kept, DIGEST_UNKNOWN)
    if request.default_branch_pipeline is not None:
        return outcome(
            Result.kept,
            f"this pipeline runs for the default branch {request.default_branch_pipeline!r}",
        )
    protection = verdict(target.tag, request.rules)
    if not protection.allowed:
        return outcome(Result.kept, protection.reason)

    original = store.digest(target)
    if original is None:
        return outcome(Result.absent, "the tag does not exist; nothing to delete")
    # A tag still on regctl's placeholder (a delete killed midway) is ours to finish, whatever
    # digest was expected; any other digest means a newer pipeline pushed the tag.
    if (
        request.expect_digest is not None
        and original != request.expect_digest
        and not _on_placeholder(store, target)
    ):
        return outcome(Result.changed, repushed(original, request.expect_digest), original)
    if request.dry_run:
        return outcome(Result.would_delete, "dry run: nothing was changed", original)

    try:
        removed = _remove(store, target, original)
    except (KeyboardInterrupt, SystemExit):
        # SIGINT or SIGTERM (a cancelled job) killed regctl, perhaps between its placeholder
        # push and the placeholder's delete: point the tag back before going.
        _undo_after_interrupt(store, target, original)
        raise
    except StoreError as error:
        result, why = _after_failure(store, target, original, error)
        return outcome(result, why, original)
    if not removed:
        return outcome(Result.absent, "the tag disappeared before it could be deleted", original)
    return outcome(Result.deleted, DELETED, original)


def _after_failure(
    store: TagStore, target: ImageRef, original: str, error: StoreError
) -> tuple[Result, str]:
    """What a failed delete came to, once any clobber is undone (recovery)."""
    try:
        after = _undo_clobber(store, target, original, error)
    except CleanupError as undo_error:
        return Result.failed, str(undo_error)
    if after is _After.gone:
        # The delete reached the registry but its answer was lost (reset, timeout).
        return Result.deleted, (
            f"tag deleted (regctl reported an error, {error.failure}, but the tag is gone); "
            "other tags on the same digest are untouched"
        )
    why = _explain(error, target, original, restored=after is _After.restored)
    if error.failure is Failure.protected and after is _After.kept:
        return Result.refused_protected, why
    return Result.failed, why


def repushed(current: str, expected: str) -> str:
    """Why a tag that no longer points at the planned digest is kept."""
    return (
        f"the tag now points at {current}, not the expected {expected}; a newer pipeline pushed it"
    )


DELETED = "tag deleted; other tags on the same digest are untouched"


def _remove(store: TagStore, target: ImageRef, original: str) -> bool:
    """``tag rm``, once more if the registry said 'not found' of a tag that is still there.

    False when the tag was already gone: someone else deleted it since we resolved it.

    Under concurrent deletes distribution 2.8 has answered 404 in the middle of regctl's
    fallback for a tag that exists, and has deleted the placeholder's manifest but kept the tag
    entry pointing at it: listed, yet unresolvable ("dangling"). Believing either 404 would
    report the tag absent and keep it. Only a manifest push moves a dangling entry, so the tag
    gets its original digest back before the second ``tag rm``.
    """
    try:
        store.tag_rm(target)
    except StoreError as error:
        if error.failure is not Failure.not_found:
            raise
        if store.digest(target) is None:
            if not _listed(store, target):
                return False
            _point_back(store, target, original)
        store.tag_rm(target)
    return True


class _After(Enum):
    """The tag's state after a failed ``tag rm``, once any clobber is undone."""

    kept = "kept"  # still at the original digest
    restored = "restored"  # was on regctl's placeholder, now back at the original
    gone = "gone"  # the delete happened after all


# How long to keep trying to undo a clobber while the registry is unreachable (a restart):
# seconds to wait before each further attempt, about a minute in all.
UNDO_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def _undo_clobber(
    store: TagStore,
    target: ImageRef,
    original: str,
    error: StoreError,
) -> _After:
    """regctl's fallback may have re-pointed the tag at its placeholder: point it back.

    A placeholder must not outlive us, so a registry that is briefly unreachable is retried.
    """
    last: StoreError | None = None
    for delay in (0.0, *UNDO_RETRY_DELAYS):
        time.sleep(delay)
        try:
            return _undo_once(store, target, original, error)
        except StoreError as problem:
            last = problem
    raise CleanupError(
        f"{error}; then {target} could not be checked or restored to {original} ({last}): "
        "it may point at regctl's placeholder image; run the same command again to finish"
    )


def _undo_after_interrupt(store: TagStore, target: ImageRef, original: str) -> None:
    """One attempt, no retries: the process was asked to stop. A rerun finishes the rest."""
    with contextlib.suppress(CleanupError):
        _undo_once(store, target, original, CleanupError("interrupted"))


def _undo_once(store: TagStore, target: ImageRef, original: str, error: CleanupError) -> _After:
    current = store.digest(target)
    if current is None and not _listed(store, target):
        return _After.gone
    if current == original:
        return _After.kept
    if current is not None and not _on_placeholder(store, target):
        # Someone pushed a new image to this tag meanwhile: theirs, not ours, to keep.
        raise CleanupError(
            f"{error}; meanwhile {target} was re-pushed ({current}) and was left as it is"
        )
    # On regctl's placeholder, or left dangling by the registry (see _remove): point it back.
    _point_back(store, target, original)
    if store.digest(target) != original:
        raise CleanupError(f"{error}; and {target} could not be restored to {original}")
    return _After.restored


_ADVICE: dict[Failure, str] = {
    Failure.unsupported: (
        "the registry refuses deletes (HTTP 405); enable deletion on the registry "
        "(distribution: storage.delete.enabled: true)"
    ),
    Failure.denied: (
        "permission denied: the credentials may not delete from this repository, or the tag is "
        "protected or immutable (GitLab protected tag rules); use a token with the delete "
        "permission or lift the rule"
    ),
    Failure.unauthorized: (
        "authentication failed: check the registry user and password "
        "(CI_REGISTRY_USER / CI_REGISTRY_PASSWORD, or --username / --password-stdin)"
    ),
    Failure.plain_http: ("the registry speaks plain HTTP; pass --tls disabled if that is intended"),
    Failure.tls: (
        "the registry's TLS certificate was not accepted; pass --ca-file with its CA, "
        "or --tls insecure to skip verification"
    ),
    Failure.unreachable: "the registry could not be reached; check the host name and port",
    Failure.timeout: "the registry did not answer in time; try again later",
}


def _explain(error: StoreError, target: ImageRef, original: str, restored: bool) -> str:
    failure = error.failure
    if failure in (Failure.unauthorized, Failure.protected):
        # The same credentials just read the tag, so they are valid: the registry answers 401
        # (insufficient_scope) when a token may pull but not delete or push; GitLab answers 403
        # for a tag its protected container tag rules cover.
        failure = Failure.denied
    advice = _ADVICE.get(failure, str(error))
    if restored:
        kept = f"{target} was restored to {original} after regctl's fallback re-pointed it"
    else:
        kept = f"{target} still points at {original}"
    return f"could not delete {target}: {advice}; {kept}"


def explain_failure(error: CleanupError) -> str:
    """A one-line message for a failure outside a deletion (login, resolve, GitLab's API)."""
    if not isinstance(error, StoreError):
        return str(error)
    advice = _ADVICE.get(error.failure)
    return f"{error}: {advice}" if advice else str(error)
