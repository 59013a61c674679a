"""Ingestion runs and their row errors in memory: the executable specification of the port."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime

from domain.feed_rows import RowError
from domain.ingestion import INTERRUPTED, Checkpoint, IngestionRun, RunCounts, RunStatus, RunTakenOver
from domain.ports import IngestionRuns


class MemoryIngestionRuns(IngestionRuns):
    def __init__(self) -> None:
        self._runs: dict[str, IngestionRun] = {}
        self._errors: dict[str, dict[int, RowError]] = {}
        self._sequence: dict[str, list[int]] = {}
        self._checkpoints: dict[str, list[Checkpoint]] = {}

    async def add(self, run: IngestionRun) -> None:
        """Stores a new run; adding a run id that is stored already changes nothing."""
        self._runs.setdefault(run.run_id, run)

    async def save(self, run: IngestionRun) -> None:
        self._runs[run.run_id] = run

    async def get(self, run_id: str) -> IngestionRun | None:
        return self._runs.get(run_id)

    def _held(self, run_id: str, owner: str | None) -> IngestionRun | None:
        """The run when it is unfinished and held by ``owner``."""
        run = self._runs.get(run_id)
        return run if run is not None and not run.status.finished and run.owner == owner else None

    async def claim(
        self, run_id: str, owner: str, lease_until: datetime, writer: str | None, started_at: datetime
    ) -> IngestionRun | None:
        run = self._runs.get(run_id)
        if run is not None and run.status is RunStatus.RUNNING and run.owner == owner and run.writer == writer:
            return run  # claimed already by this very claim (a retry)
        if run is None or run.status is not RunStatus.QUEUED or run.owner not in (None, owner):
            return None
        claimed = run.but(
            status=RunStatus.RUNNING,
            owner=owner,
            lease_until=lease_until,
            writer=writer,
            started_at=run.started_at or started_at,
        )
        self._runs[run_id] = claimed
        return claimed

    async def renew(self, run_id: str, owner: str, lease_until: datetime, counts: RunCounts) -> bool:
        run = self._held(run_id, owner)
        if run is None:
            return False
        self._runs[run_id] = run.but(lease_until=lease_until, counts=counts)
        return True

    async def finish(self, run: IngestionRun, owner: str) -> bool:
        if self._held(run.run_id, owner) is None:
            return self._runs.get(run.run_id) == run  # stored already by this very finish (a retry)
        self._runs[run.run_id] = run
        return True

    async def interrupt(self, run_id: str, owner: str | None, finished_at: datetime) -> IngestionRun | None:
        run = self._held(run_id, owner)
        if run is None:
            return None
        interrupted = run.but(status=RunStatus.FAILED, reason=INTERRUPTED, finished_at=finished_at, lease_until=None)
        self._runs[run_id] = interrupted
        return interrupted

    async def hand_back(self, run_id: str, owner: str) -> IngestionRun | None:
        run = self._held(run_id, owner)
        if run is None or run.status is not RunStatus.RUNNING:
            return None
        queued = run.but(status=RunStatus.QUEUED, owner=None, lease_until=None, writer=None)
        self._runs[run_id] = queued
        return queued

    def check_held(self, checkpoint: Checkpoint) -> IngestionRun:
        """The checkpoint's running run, if its owner still holds it (else ``RunTakenOver``)."""
        run = self._held(checkpoint.run_id, checkpoint.owner)
        if run is None or run.status is not RunStatus.RUNNING:
            raise RunTakenOver(f"run {checkpoint.run_id} is no longer {checkpoint.owner}'s")
        return run

    def keep_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Stores a checkpoint whose run ``check_held`` just found held (no await in between: atomic)."""
        run = self.check_held(checkpoint)
        self._runs[run.run_id] = run.but(counts=checkpoint.counts, lease_until=checkpoint.lease_until)
        self._checkpoints.setdefault(run.run_id, []).append(checkpoint)
        self._add_errors(run.run_id, checkpoint.first_error, checkpoint.errors)

    async def store_checkpoint(self, checkpoint: Checkpoint, *, check_only: bool = False) -> None:
        if check_only:
            self.check_held(checkpoint)
        else:
            self.keep_checkpoint(checkpoint)

    async def checkpoints(self, run_id: str) -> list[Checkpoint]:
        return list(self._checkpoints.get(run_id, []))

    async def forget_checkpoints(self, run_id: str) -> None:
        self._checkpoints.pop(run_id, None)

    async def unfinished(self, limit: int) -> list[IngestionRun]:
        waiting = [run for run in self._runs.values() if not run.status.finished]
        return sorted(waiting, key=lambda run: (run.created_at, run.run_id))[: max(limit, 0)]

    async def recent(self, limit: int) -> list[IngestionRun]:
        newest = sorted(self._runs.values(), key=lambda run: (run.created_at, run.run_id), reverse=True)
        return newest[: max(limit, 0)]

    async def add_errors(self, run_id: str, first_seq: int, errors: Sequence[RowError]) -> None:
        self._add_errors(run_id, first_seq, errors)

    def _add_errors(self, run_id: str, first_seq: int, errors: Sequence[RowError]) -> None:
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
