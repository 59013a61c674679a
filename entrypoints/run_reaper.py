"""The sweep every serving process and worker runs now and then, and the consumer of runs.

Runs nobody works on any more are settled (``RunLeases.settle_all``): recorded interrupted, or,
with a job engine, queued again and submitted anew (the delivery their dead executor held is given
up); runs queued are submitted again (a job engine that lost its data loses no run: the run records
in MongoDB are the truth); spooled feeds of dead processes are deleted, and kept feeds of failed
runs once they expire. Without the sweep, a run whose process died would be settled only when
someone looks at it; with it, no run stays ``running`` without a live executor for much longer than
its lease (CONTRACT.md section 6: the lease plus 30 s at most).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from adapters.mongo.gridfs_feeds import GridFsFeeds
from application.run_leases import SWEEP_LIMIT, RunLeases
from domain.ingestion import RunStatus
from entrypoints.container import Runs

log = structlog.get_logger("eyewear.ingestion")
#: The longest pause between two sweeps, whatever the lease.
MAX_PAUSE = 10.0


def pause_for(leases: RunLeases) -> float:
    return min(leases.lease.total_seconds() / 2, MAX_PAUSE)


async def sweep(runs: Runs) -> None:
    """One sweep; a failure is logged, never raised (the next sweep tries again)."""
    try:
        settled = await runs.leases.settle_all()  # a portable run nobody works on goes back to the queue
        resubmitted = 0
        if runs.elsewhere:
            for run in await runs.leases.runs.unfinished(SWEEP_LIMIT):
                if run.status is RunStatus.QUEUED and run.owner is None and run.portable:
                    await runs.queue.submit(run.run_id)  # a no-op for a run its job engine still holds
                    resubmitted += 1
        removed = await asyncio.to_thread(runs.spool.sweep)
        expired = await runs.feeds.expire() if isinstance(runs.feeds, GridFsFeeds) else 0
    except Exception as error:
        log.warning("ingestion.sweep.failed", error=type(error).__name__, detail=str(error).splitlines()[0][:200])
        return
    if settled or removed or expired:
        log.info(
            "ingestion.sweep.done",
            settled=[run.run_id for run in settled],
            resubmitted=resubmitted,
            spool_files_removed=len(removed),
            feeds_expired=expired,
        )


@contextlib.asynccontextmanager
async def run_reaper(runs: Runs) -> AsyncIterator[None]:
    """Sweeps once at once (what a killed predecessor left), then every ``pause_for(leases)`` seconds."""
    await sweep(runs)

    async def keep_sweeping() -> None:
        while True:
            await asyncio.sleep(pause_for(runs.leases))
            await sweep(runs)

    task = asyncio.create_task(keep_sweeping())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def consuming(runs: Runs, concurrency: int, grace: float = 0.0) -> AsyncIterator[None]:
    """Executes delivered runs while the block lasts; at its end, waits ``grace`` seconds for the
    runs going on, then stops them (handed back to the job engine, or given up as interrupted)."""
    consumer = runs.queue.consumer(runs.execute, concurrency)
    await consumer.start()
    try:
        yield
    finally:
        await consumer.stop(grace)
