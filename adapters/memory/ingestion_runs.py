"""Ingestion runs and their row errors in memory: the executable specification of the port."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from domain.feed_rows import RowError
from domain.ingestion import IngestionRun
from domain.ports import IngestionRuns


class MemoryIngestionRuns(IngestionRuns):
    def __init__(self) -> None:
        self._runs: dict[str, IngestionRun] = {}
        self._errors: dict[str, dict[int, RowError]] = {}
        self._sequence: dict[str, list[int]] = {}

    async def add(self, run: IngestionRun) -> None:
        """Stores a new run; adding a run id that is stored already changes nothing."""
        self._runs.setdefault(run.run_id, run)

    async def save(self, run: IngestionRun) -> None:
        self._runs[run.run_id] = run

    async def get(self, run_id: str) -> IngestionRun | None:
        return self._runs.get(run_id)

    async def recent(self, limit: int) -> list[IngestionRun]:
        newest = sorted(self._runs.values(), key=lambda run: (run.created_at, run.run_id), reverse=True)
        return newest[: max(limit, 0)]

    async def add_errors(self, run_id: str, first_seq: int, errors: Sequence[RowError]) -> None:
        stored = self._errors.setdefault(run_id, {})
        numbers = self._sequence.setdefault(run_id, [])
        for seq, error in enumerate(errors, start=first_seq):
            if seq not in stored:
                stored[seq] = error
                bisect.insort(numbers, seq)

    async def errors(self, run_id: str, after: int | None, limit: int) -> list[tuple[int, RowError]]:
        numbers = self._sequence.get(run_id, [])
        start = 0 if after is None else bisect.bisect_right(numbers, after)
        stored = self._errors.get(run_id, {})
        return [(seq, stored[seq]) for seq in numbers[start : start + max(limit, 0)]]
