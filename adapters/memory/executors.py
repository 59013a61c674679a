"""Run owners for tests: this process is ``current``; the owners listed in ``stopped`` are gone."""

from __future__ import annotations

from domain.ports import Executors


class KnownExecutors(Executors):
    def __init__(self, current: str = "test-host:1:1") -> None:
        self._current = current
        self.stopped: set[str] = set()

    def current(self) -> str:
        return self._current

    def gone(self, owner: str) -> bool:
        return owner in self.stopped
