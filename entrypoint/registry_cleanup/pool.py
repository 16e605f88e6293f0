"""Run many independent calls with a bounded number in flight; results come back in order done.

Threads, because every call waits on the network (GitLab's API or a regctl process). One
failing call never stops the others: the worker turns failures into results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")

# Requests to GitLab's API in flight at once by default. Each waits on the network, so the round
# trip, not the runner, sets the pace: 16 is where a 50 ms round trip stops costing much
# (bench/RESULTS.md), and the rate limiter (rate_limit.py) keeps it within GitLab's budget.
DEFAULT_CONCURRENCY = 16
# Through regctl each deletion is a process on the runner, and a registry without the OCI
# tag delete (regctl's placeholder path) copes badly with many at once: fewer by default.
DEFAULT_REGCTL_CONCURRENCY = 4
MAX_CONCURRENCY = 32


def run_bounded(items: Iterable[T], worker: Callable[[T], R], concurrency: int) -> Iterator[R]:
    """Yield ``worker(item)`` for every item, at most ``concurrency`` running at once.

    Items are submitted lazily, so a long list never queues more than ``concurrency`` calls.
    """
    # Here, not at the top: the CLI reads this module's defaults, and `delete` needs no threads.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending: set[Future[R]] = set()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cleanup") as executor:
        for item in source:
            pending.add(executor.submit(worker, item))
            if len(pending) >= concurrency:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
