"""Runs executed by the process that accepted them (no ``EYEWEAR_BROKER_URL``): the queue is this
process's memory, its consumer this process's tasks. Nothing is delivered again: a run stopped
before its end is given up (recorded interrupted), since no other executor could go on with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from application.run_queue import Delivery, RunConsumer, RunHandler, RunQueue, stop_delivery

logger = logging.getLogger(__name__)


class InProcessRunQueue(RunQueue):
    redelivers = False

    def __init__(self) -> None:
        self.waiting: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.cancelled: set[str] = set()
        self.running: dict[str, tuple[asyncio.Task[object], Delivery]] = {}

    async def submit(self, run_id: str) -> None:
        if run_id in self.queued or run_id in self.running:
            return
        self.cancelled.discard(run_id)
        self.queued.add(run_id)
        self.waiting.put_nowait(run_id)

    async def resubmit(self, run_id: str) -> None:
        await self.submit(run_id)  # no other executor holds anything in this process

    async def cancel(self, run_id: str) -> None:
        if run_id in self.queued:
            self.cancelled.add(run_id)
        held = self.running.get(run_id)
        if held is not None:
            await stop_delivery(*held)

    def consumer(self, handler: RunHandler, concurrency: int) -> RunConsumer:
        return _Consumer(self, handler, concurrency)


class _Consumer(RunConsumer):
    def __init__(self, queue: InProcessRunQueue, handler: RunHandler, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.takers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.takers = [asyncio.create_task(self._take()) for _ in range(self.concurrency)]

    async def _take(self) -> None:
        queue = self.queue
        while True:
            run_id = await queue.waiting.get()
            queue.queued.discard(run_id)
            if run_id in queue.cancelled:
                queue.cancelled.discard(run_id)
                continue
            delivery = Delivery(run_id)
            task = asyncio.ensure_future(self.handler(delivery))
            queue.running[run_id] = (task, delivery)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():  # this taker is stopping: its run is stopped by ``stop``
                    raise
            except Exception:  # a bug: the handler records data and storage failures in the run itself
                logger.exception("ingestion.run.crashed run_id=%s", run_id)
            finally:
                if task.done():
                    queue.running.pop(run_id, None)

    async def stop(self, grace: float) -> None:
        for taker in self.takers:
            taker.cancel()
        for taker in self.takers:
            with contextlib.suppress(asyncio.CancelledError):
                await taker
        held = list(self.queue.running.values())
        if held:
            await asyncio.wait({task for task, _ in held}, timeout=grace)
        for task, delivery in held:
            await stop_delivery(task, delivery)
        self.queue.running.clear()
