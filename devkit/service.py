"""The with-statement shape shared by the local services the tests and benchmarks start."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Service:
    """Something with ``start()`` and ``stop()``; ``with`` starts it and always stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
