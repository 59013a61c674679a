"""Leases of ingestion runs: who works on a run, and what becomes of a run nobody works on.

A process that takes a run on records itself as its ``owner`` with a lease (``lease_seconds``,
``EYEWEAR_RUN_LEASE_SECONDS``), renews the lease while it works, and stores the run's end only
while it still holds it. A process that dies cannot say so; so every process that looks at an
unfinished run (reads it, lists it, rolls it back, starts a run, or sweeps them all) checks it:
when its lease lapsed, or its owner is known to be gone (a process of this host that exited), the
run is recorded ``failed`` with reason ``interrupted``, once, by whichever process gets there
first. Before that, whatever the dead writer left open is released (a transaction that would hold
its products for a minute), so the same feed run again converges at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from application.metrics import IngestionMetrics, NoIngestionMetrics
from application.run_queue import RunQueue
from domain.ingestion import IngestionRun, RunStatus
from domain.ports import BulkCatalog, Clock, Executors, IngestionRuns

DEFAULT_LEASE_SECONDS = 30.0
#: Unfinished runs looked at (and counted) by one sweep: there are rarely more than a few, and a
#: backlog past this many is reported as this many.
SWEEP_LIMIT = 1000


class IngestionLog(Protocol):
    """Where a run tells operators what happened (``ingestion.run.finished``, alerts)."""

    def event(self, name: str, **fields: Any) -> None: ...


class NoIngestionLog:
    def event(self, name: str, **fields: Any) -> None:
        return None


def report_run(run: IngestionRun, metrics: IngestionMetrics, log: IngestionLog) -> None:
    """The metrics and the log line of a run that ended, however it ended."""
    for outcome in ("created", "updated", "unchanged", "invalid"):
        metrics.ingestion_rows(outcome, getattr(run.counts, outcome))
    metrics.ingestion_run(run.status.value, run.duration_seconds or 0.0)
    log.event(
        "ingestion.run.finished",
        run_id=run.run_id,
        status=run.status.value,
        reason=run.reason,
        rows=run.counts.rows,
        rows_per_second=run.rows_per_second,
        duration_seconds=run.duration_seconds,
        **{f"count_{name}": value for name, value in run.counts.as_dict().items() if name != "rows"},
    )


class SingleProcess(Executors):
    """The executors of a catalog only this process uses (the memory twins): nobody else is gone."""

    def current(self) -> str:
        return "this-process"

    def gone(self, owner: str) -> bool:
        return False


class RunLeases:
    def __init__(
        self,
        runs: IngestionRuns,
        catalog: BulkCatalog,
        clock: Clock,
        executors: Executors | None = None,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        metrics: IngestionMetrics | None = None,
        log: IngestionLog | None = None,
        requeue: bool = False,
        queue: RunQueue | None = None,
    ) -> None:
        """``requeue``: a job engine redelivers runs (``EYEWEAR_BROKER_URL``): a running run nobody
        works on whose feed any executor can read (``portable``) goes back to ``queue``, for the next
        executor to go on from its checkpoints, instead of being recorded interrupted."""
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.runs = runs
        self.catalog = catalog
        self.clock = clock
        self.executors: Executors = executors or SingleProcess()
        self.lease = timedelta(seconds=lease_seconds)
        self.metrics: IngestionMetrics = metrics or NoIngestionMetrics()
        self.log: IngestionLog = log or NoIngestionLog()
        self.requeue = requeue
        self.queue = queue

    @property
    def takes_over(self) -> bool:
        """Whether a run nobody works on is taken over (queued again) rather than interrupted."""
        return self.requeue

    @property
    def owner(self) -> str:
        return self.executors.current()

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: three chances before the lease runs out, and counts at most
        five seconds old in the record of a run that is interrupted."""
        return min(self.lease.total_seconds() / 3, 5.0)

    def until(self) -> datetime:
        return self.clock.now() + self.lease

    def abandoned(self, run: IngestionRun) -> bool:
        gone = run.owner is not None and self.executors.gone(run.owner)
        return run.abandoned(self.clock.now(), gone)

    async def release(self, run: IngestionRun) -> None:
        """Ends what the run's writer left open (a transaction holding its products); a failure is
        logged: the run is settled anyway, and whoever goes on may wait for the server meanwhile."""
        if run.writer is None:
            return
        try:
            await self.catalog.release(run.writer)
        except Exception as error:
            self.log.event("ingestion.run.release_failed", run_id=run.run_id, error=type(error).__name__)

    async def settle(self, run: IngestionRun) -> IngestionRun:
        """The run as it stands: when nobody works on it any more, queued again (``requeue``, a
        running run) or recorded interrupted first."""
        if not self.abandoned(run):
            return run
        await self.release(run)
        if self.requeue and run.portable and run.status is RunStatus.RUNNING and run.owner is not None:
            queued = await self.runs.hand_back(run.run_id, run.owner)
            if queued is None:
                return await self.runs.get(run.run_id) or run
            self.log.event("ingestion.run.requeued", run_id=run.run_id, owner=run.owner, rows=run.counts.rows)
            if self.queue is not None:  # at once: the delivery its dead executor held is given up
                await self.queue.resubmit(run.run_id)
            return queued
        interrupted = await self.runs.interrupt(run.run_id, run.owner, self.clock.now())
        if interrupted is None:  # another process settled it, or its owner finished after all
            return await self.runs.get(run.run_id) or run
        self.log.event(
            "ingestion.run.interrupted",
            run_id=run.run_id,
            owner=run.owner,
            lease_until=run.lease_until.isoformat() if run.lease_until else None,
            rows=run.counts.rows,
            alert=True,
        )
        report_run(interrupted, self.metrics, self.log)
        return interrupted

    async def settle_all(self) -> list[IngestionRun]:
        """Every unfinished run nobody works on, settled; the ones this call settled. The runs still
        queued and running are counted for the operators (``runs_unfinished``)."""
        settled: list[IngestionRun] = []
        counts = {RunStatus.QUEUED: 0, RunStatus.RUNNING: 0}
        for run in await self.runs.unfinished(SWEEP_LIMIT):
            if self.abandoned(run):
                run = await self.settle(run)
                settled.append(run)
            if run.status in counts:
                counts[run.status] += 1
        for status, count in counts.items():
            self.metrics.runs_unfinished(status.value, count)
        return settled

    async def give_up(self, run_id: str) -> IngestionRun | None:
        """This process stops working on its run before the end (it is shutting down)."""
        interrupted = await self.runs.interrupt(run_id, self.owner, self.clock.now())
        if interrupted is not None:
            report_run(interrupted, self.metrics, self.log)
        return interrupted
