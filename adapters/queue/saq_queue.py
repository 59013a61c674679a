"""Ingestion runs as jobs of SAQ (Simple Async Queue) on Redis (``EYEWEAR_BROKER_URL``), ADR 0020.

One job per run, keyed by the run id (submitting a run that waits changes nothing). A job is
acknowledged only when its handler returns; its ``heartbeat`` is the run lease: the consumer touches
the job while the handler works, so a worker that dies stops touching it, and the sweep every worker
runs (every ``sweep_seconds``, one worker at a time) puts it back in the queue for another worker,
which takes the run over from its checkpoints. A consumer that stops hands its jobs back the same way.
The use cases never see SAQ: this is the ``RunQueue`` port's job-engine adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any, ClassVar

from saq import Queue, Worker
from saq.job import Status

from application.run_queue import Delivery, RunConsumer, RunHandler, RunQueue, stop_delivery

logger = logging.getLogger(__name__)

QUEUE_NAME = "eyewear-runs"
FUNCTION = "eyewear.execute_run"
#: Deliveries of one run before SAQ gives up on it (a run is redelivered only when its worker died
#: or stopped; the run's own record, not this count, says whether it is done).
MAX_DELIVERIES = 1000
#: How long SAQ keeps a finished job's record (the run's record is the one that matters).
JOB_TTL = 24 * 3600
_HELD = (Status.ACTIVE, Status.ABORTING)


class _Worker(Worker):  # type: ignore[misc]
    """SAQ's worker without its own signal handlers (``eyewear worker`` handles SIGTERM and SIGINT),
    whose stop waits only for the runs going on: SAQ's own waits for its idle upkeep loops too, whose
    sleeps (up to a minute) would hold a worker with nothing to do for the whole grace period."""

    SIGNALS: ClassVar[list[int]] = []
    grace: float = 0.0

    async def stop(self) -> None:
        self.event.set()  # takes no new run
        running = [context["task"] for context in self.job_task_contexts.values() if not context["task"].done()]
        if running and self.grace > 0:
            await asyncio.wait(running, timeout=self.grace)
        self._shutdown_grace_period_s = 0  # what is still running is cancelled now, and handed back
        await super().stop()


class SaqRunQueue(RunQueue):
    redelivers = True

    def __init__(self, url: str, *, heartbeat_seconds: float, sweep_seconds: float, name: str = QUEUE_NAME) -> None:
        self.queue: Any = Queue.from_url(url, name=name)
        self.heartbeat = max(1, math.ceil(heartbeat_seconds))
        self.sweep_seconds = max(1, math.ceil(sweep_seconds))

    async def open(self) -> None:
        await self.queue.connect()

    async def close(self) -> None:
        try:
            await self.queue.disconnect()
        except Exception as error:  # Redis away at exit: nothing of ours is left to lose there
            logger.warning("runs.queue.close_failed: %s", type(error).__name__)

    async def submit(self, run_id: str) -> None:
        await self.queue.enqueue(
            FUNCTION,
            key=run_id,
            run_id=run_id,
            timeout=0,
            heartbeat=self.heartbeat,
            retries=MAX_DELIVERIES,
            ttl=JOB_TTL,
        )

    async def resubmit(self, run_id: str) -> None:
        job = await self.queue.job(run_id)
        if job is not None and job.status in _HELD:
            await self.queue.retry(job, "its executor is gone")  # back to the queue, before the sweep would
            return
        await self.submit(run_id)

    async def cancel(self, run_id: str) -> None:
        job = await self.queue.job(run_id)
        if job is not None and job.status not in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
            await self.queue.abort(job, "cancelled")

    async def status(self, run_id: str) -> str | None:
        """The job's status as SAQ sees it (for tests and operators)."""
        job = await self.queue.job(run_id)
        return None if job is None else str(job.status.value)

    def consumer(self, handler: RunHandler, concurrency: int) -> RunConsumer:
        return _SaqConsumer(self, handler, concurrency)


class _SaqConsumer(RunConsumer):
    def __init__(self, runs: SaqRunQueue, handler: RunHandler, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.runs = runs
        self.handler = handler

        async def execute_run(ctx: dict[str, Any], *, run_id: str) -> None:
            await self._deliver(ctx["job"], run_id)

        self.worker = _Worker(
            runs.queue,
            functions=[(FUNCTION, execute_run)],
            concurrency=concurrency,
            timers={"sweep": runs.sweep_seconds, "abort": 1, "schedule": 60, "worker_info": 10},
            cancellation_hard_deadline_s=20.0,
            dequeue_timeout=1.0,  # idle takers look up once a second: a stopping worker takes no new run
        )
        self.task: asyncio.Task[None] | None = None

    async def _deliver(self, job: Any, run_id: str) -> None:
        delivery = Delivery(run_id)
        task: asyncio.Task[object] = asyncio.ensure_future(self.handler(delivery))
        touching = asyncio.create_task(self._touch(job))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await stop_delivery(task, delivery)  # the handler hands its run back, then the job is retried
            raise
        finally:
            touching.cancel()

    async def _touch(self, job: Any) -> None:
        """The job's heartbeat while its run is worked on: a dead worker's job is swept after ``heartbeat``."""
        while True:
            await asyncio.sleep(self.runs.heartbeat / 3)
            try:
                await job.update()
            except Exception as error:  # Redis away: the next touch may make it; the run's lease is in MongoDB
                logger.warning("runs.job.touch_failed %s: %s", job.key, type(error).__name__)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.worker.start())

    async def stop(self, grace: float) -> None:
        self.worker.grace = max(0.0, grace)
        await self.worker.stop()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
