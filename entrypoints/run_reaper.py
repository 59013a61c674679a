"""The sweep every serving process runs now and then: runs nobody works on any more are recorded
interrupted (``RunLeases.settle_all``), and spooled feeds of dead processes deleted (``FeedSpool``).

Without it, a run whose process died would be settled only when someone looks at it; with it, no
run stays ``running`` without a live executor for much longer than its lease (CONTRACT.md section 6:
the lease plus 30 s at most).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from adapters.files.feed_spool import FeedSpool
from application.run_leases import RunLeases

log = structlog.get_logger("eyewear.ingestion")
#: The longest pause between two sweeps, whatever the lease.
MAX_PAUSE = 10.0


def pause_for(leases: RunLeases) -> float:
    return min(leases.lease.total_seconds() / 2, MAX_PAUSE)


async def sweep(leases: RunLeases, spool: FeedSpool | None) -> None:
    """One sweep; a failure is logged, never raised (the next sweep tries again)."""
    try:
        settled = await leases.settle_all()
        removed = await asyncio.to_thread(spool.sweep) if spool is not None else []
    except Exception as error:
        log.warning("ingestion.sweep.failed", error=type(error).__name__, detail=str(error).splitlines()[0][:200])
        return
    if settled or removed:
        log.info("ingestion.sweep.done", interrupted=[run.run_id for run in settled], spool_files_removed=len(removed))


@contextlib.asynccontextmanager
async def run_reaper(leases: RunLeases, spool: FeedSpool | None) -> AsyncIterator[None]:
    """Sweeps once at once (what a killed predecessor left), then every ``pause_for(leases)`` seconds."""
    await sweep(leases, spool)

    async def keep_sweeping() -> None:
        while True:
            await asyncio.sleep(pause_for(leases))
            await sweep(leases, spool)

    task = asyncio.create_task(keep_sweeping())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
