"""The ``RunQueue`` contract over the in-process runner and the job engine (SAQ on a real
``redis-server``): the same assertions, with ``redelivers`` saying what happens to a stopped run."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.memory.run_queue import InProcessRunQueue
from adapters.queue.saq_queue import SaqRunQueue
from application.run_queue import Delivery, RunQueue

WITHIN = 20.0  # seconds for anything the tests wait for (the job engine polls once a second)


@pytest.fixture(params=["in-process", "saq"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[RunQueue]:
    if request.param == "in-process":
        yield InProcessRunQueue()
        return
    redis_url = request.getfixturevalue("redis_url")
    saq = SaqRunQueue(redis_url, heartbeat_seconds=1, sweep_seconds=1, name=f"test-{uuid.uuid4().hex[:8]}")
    await saq.open()
    yield saq
    await saq.close()


class Recorder:
    """A handler that records its deliveries; runs named ``slow-*`` wait until released or stopped."""

    def __init__(self) -> None:
        self.handled: Counter[str] = Counter()
        self.started: dict[str, asyncio.Event] = {}
        self.stopped: set[str] = set()
        self.release = asyncio.Event()

    def began(self, run_id: str) -> asyncio.Event:
        return self.started.setdefault(run_id, asyncio.Event())

    async def __call__(self, delivery: Delivery) -> None:
        self.began(delivery.run_id).set()
        try:
            if delivery.run_id.startswith("slow-"):
                await self.release.wait()
        except asyncio.CancelledError:
            delivery.stopping.set()
            self.stopped.add(delivery.run_id)
            raise
        self.handled[delivery.run_id] += 1


async def eventually(check: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WITHIN
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def delivered(recorder: Recorder, run_id: str, redelivers: bool, what: str) -> None:
    """``run_id`` handled, at least once (``RunQueue``): exactly once in one process; with a job
    engine perhaps once more, when SAQ's sweep takes a delivery just dequeued for a lost one
    (tobymao/saq#277), which the executor's lease turns into a no-op (tests/unit/test_run_takeover.py)."""
    await eventually(lambda: recorder.handled[run_id] >= 1, what)
    await asyncio.sleep(0.3)
    assert recorder.handled[run_id] <= (2 if redelivers else 1), recorder.handled


async def test_each_submitted_run_is_handled_by_one_of_the_consumers(queue: RunQueue) -> None:
    """At least once (``RunQueue``): a second submit of a waiting run adds no delivery of its own,
    but a job engine's sweep may still deliver a run again (tests/unit/test_run_takeover.py shows
    the executor makes that a no-op)."""
    recorder = Recorder()
    runs = [f"run-{n}" for n in range(6)]
    for run_id in runs:  # submitted before anyone consumes, so each second submit finds its run waiting
        await queue.submit(run_id)
        await queue.submit(run_id)  # a run that waits already: nothing more
    consumers = [queue.consumer(recorder, concurrency=2) for _ in range(2)]
    for consumer in consumers:
        await consumer.start()
    await eventually(lambda: set(recorder.handled) == set(runs), "every run handled")
    await asyncio.sleep(0.3)
    assert set(recorder.handled) == set(runs)
    if not queue.redelivers:  # one process, one delivery each
        assert recorder.handled == Counter(runs)
    else:  # twice at most: the submit's delivery, and perhaps one sweep's
        assert max(recorder.handled.values()) <= 2
    for consumer in consumers:
        await consumer.stop(grace=5)


async def test_a_cancelled_run_that_waits_is_never_handled(queue: RunQueue) -> None:
    recorder = Recorder()
    await queue.submit("cancelled")
    await queue.cancel("cancelled")
    await queue.submit("kept")
    consumer = queue.consumer(recorder, concurrency=1)
    await consumer.start()
    await delivered(recorder, "kept", queue.redelivers, "the other run handled")  # waits 0.3 s more
    assert "cancelled" not in recorder.handled
    await consumer.stop(grace=5)


async def test_cancelling_a_run_being_handled_stops_its_handler(queue: RunQueue) -> None:
    recorder = Recorder()
    consumer = queue.consumer(recorder, concurrency=1)
    await consumer.start()
    await queue.submit("slow-cancelled")
    await asyncio.wait_for(recorder.began("slow-cancelled").wait(), WITHIN)
    await queue.cancel("slow-cancelled")
    await eventually(lambda: "slow-cancelled" in recorder.stopped, "the handler saw its cancellation")
    assert "slow-cancelled" not in recorder.handled
    await consumer.stop(grace=5)


async def test_a_stopping_consumer_finishes_within_its_grace_or_hands_the_run_back(queue: RunQueue) -> None:
    recorder = Recorder()
    first = queue.consumer(recorder, concurrency=1)
    await first.start()
    await queue.submit("slow-stopped")
    await asyncio.wait_for(recorder.began("slow-stopped").wait(), WITHIN)
    await first.stop(grace=0)
    assert recorder.stopped == {"slow-stopped"} and not recorder.handled
    recorder.release.set()
    second = queue.consumer(recorder, concurrency=1)
    await second.start()
    await queue.submit("after")
    await delivered(recorder, "after", queue.redelivers, "the next run handled")
    if queue.redelivers:  # the stopped run comes back, to any consumer
        await delivered(recorder, "slow-stopped", queue.redelivers, "the stopped run delivered again")
    else:  # nobody else could go on with it: given up
        await asyncio.sleep(0.3)
        assert recorder.handled["slow-stopped"] == 0
    await second.stop(grace=5)


async def test_a_run_whose_consumer_is_gone_is_delivered_again_when_resubmitted(queue: RunQueue) -> None:
    recorder = Recorder()
    if isinstance(queue, SaqRunQueue):  # a delivery taken by a consumer that then died: never touched again
        await queue.submit("orphan")
        taken = await queue.queue.dequeue(timeout=5)
        assert taken is not None and taken.key == "orphan"
        await taken.update(status="active")
        assert await queue.status("orphan") == "active"
    await queue.resubmit("orphan")
    consumer = queue.consumer(recorder, concurrency=1)
    await consumer.start()
    await delivered(recorder, "orphan", queue.redelivers, "the orphan delivered again")
    await consumer.stop(grace=5)


async def test_a_dead_consumers_run_is_swept_back_to_the_queue_after_its_heartbeat(redis_url: str) -> None:
    """The job engine alone (no resubmission): a delivery nobody touches is swept and delivered again."""
    queue = SaqRunQueue(redis_url, heartbeat_seconds=1, sweep_seconds=1, name=f"test-{uuid.uuid4().hex[:8]}")
    await queue.open()
    try:
        await queue.submit("abandoned")
        taken = await queue.queue.dequeue(timeout=5)
        assert taken is not None
        await taken.update(status="active")
        recorder = Recorder()
        consumer = queue.consumer(recorder, concurrency=1)
        await consumer.start()
        await delivered(recorder, "abandoned", queue.redelivers, "swept and delivered again")
        await consumer.stop(grace=5)
    finally:
        await queue.close()
