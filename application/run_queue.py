"""Where accepted runs wait for an executor: the ``RunQueue`` port (CONTRACT.md section 6).

Its adapters: the in-process runner (``adapters/memory/run_queue.py``, no job engine) and SAQ on
Redis (``adapters/queue/saq_queue.py``, ADR 0020). The use cases never see either.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class Delivery:
    """One delivery of a run to a consumer's handler. The handler sets ``stopping`` once it has seen
    its cancellation (and is putting the run back): a consumer that stops repeats a cancellation
    until then, since one can be lost inside a driver (PyMongo waits with ``asyncio.wait_for``,
    which on Python 3.11 drops a cancellation that arrives as the awaited read completes)."""

    run_id: str
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


RunHandler = Callable[[Delivery], Awaitable[object]]


class RunConsumer(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None:
        """Begins taking runs."""

    @abc.abstractmethod
    async def stop(self, grace: float) -> None:
        """Takes no more runs; waits up to ``grace`` seconds for the current ones to end, then stops
        them (the handler sees a cancellation: it hands its run back, or gives it up)."""


class RunQueue(abc.ABC):
    """Where accepted runs wait for an executor: in this process, or a job engine's queue.

    ``redelivers``: a run whose executor stopped (handed back, or died) is delivered again, to any
    consumer; without it (in-process), a stopped run is given up, since no other executor exists.

    Delivery is at least once: a job engine may deliver a run again that a consumer has just taken
    or finished (SAQ's sweep can, tobymao/saq#277). The handler makes that harmless: a finished run
    is returned as stored, and a run another live executor holds under its lease is not taken.
    """

    redelivers: bool = False

    @abc.abstractmethod
    async def submit(self, run_id: str) -> None:
        """Queues ``run_id`` for execution; submitting a run that waits already changes nothing."""

    @abc.abstractmethod
    async def resubmit(self, run_id: str) -> None:
        """Queues again a run whose executor is gone: a delivery it still held is given up first."""

    @abc.abstractmethod
    async def cancel(self, run_id: str) -> None:
        """A run that waits is never delivered; one being executed is stopped."""

    @abc.abstractmethod
    def consumer(self, handler: RunHandler, concurrency: int) -> RunConsumer:
        """Runs ``handler(delivery)`` for delivered runs, ``concurrency`` at a time."""


async def stop_delivery(task: asyncio.Task[object], delivery: Delivery, every: float = 0.05) -> None:
    """Cancels a handler's task until it has seen it (``Delivery``), then waits for it to end."""
    while not task.done() and not delivery.stopping.is_set():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
