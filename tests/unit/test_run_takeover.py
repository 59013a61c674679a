"""Exactly-once effects across an executor's death (the memory twins; the real processes are in
``tests/e2e/test_scale_out.py``): a run whose executor died mid-way is taken over by another,
which goes on after the last committed batch and ends with the counts, versions and history of an
uninterrupted run, whatever batch the first one died in."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.feeds.sample_feed import generate_rows
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from adapters.memory.executors import KnownExecutors
from adapters.memory.ingestion_runs import MemoryIngestionRuns
from application.authorization import Authorizer
from application.ingestion import IngestFeed
from application.run_leases import RunLeases
from domain.feed_rows import FeedRow
from domain.identifiers import product_id_for
from domain.ingestion import ErrorPolicy, RunStatus
from tests.builders import SANITIZER, caller

ADMIN = caller("admin", "admin")
ROWS = list(generate_rows(styles=8, seed=31))


class Feed:
    """The rows; with ``stop_at``, the reader blocks there (the executor is about to die), and ends
    there once released, unless ``goes_on``."""

    name = "feed.jsonl"

    def __init__(self, rows: list[dict[str, Any]], stop_at: int | None = None, goes_on: bool = False) -> None:
        self._rows = rows
        self.stop_at = stop_at
        self.goes_on = goes_on
        self.stopped = threading.Event()
        self.release = threading.Event()

    def rows(self) -> Iterator[FeedRow]:
        for index, row in enumerate(self._rows):
            if index == self.stop_at:
                self.stopped.set()
                self.release.wait(30)
                if not self.goes_on:
                    return
            yield FeedRow(index + 1, copy.deepcopy(row))


class World:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.catalog = MemoryCatalog()
        self.runs = MemoryIngestionRuns()
        self.authorizer = Authorizer(MemoryAuditLog(), self.clock)
        self.stopped: set[str] = set()

    def executor(self, owner: str, batch_size: int) -> IngestFeed:
        executors = KnownExecutors(owner)
        executors.stopped = self.stopped
        leases = RunLeases(self.runs, self.catalog, self.clock, executors, requeue=True)
        return IngestFeed(
            self.catalog, self.runs, self.clock, SANITIZER, self.authorizer, batch_size=batch_size, leases=leases
        )

    async def state(self) -> tuple[dict[str, Any], dict[str, int], int]:
        ids = {product_id_for(str(row["brand"]), str(row["style_id"])) for row in ROWS}
        products = await self.catalog.get_many(ids)
        content = {pid: product.draft for pid, product in products.items()}
        versions = {pid: product.version for pid, product in products.items()}
        entries = sum([len(await self.catalog.entries(pid)) for pid in ids])
        return content, versions, entries


async def uninterrupted(rows: list[dict[str, Any]], batch_size: int, policy: ErrorPolicy) -> tuple[Any, ...]:
    world = World()
    run = await world.executor("clean:1:1", batch_size)(Feed(rows), ADMIN, error_policy=policy)
    return (run.status, run.counts, *await world.state())


async def taken_over(rows: list[dict[str, Any]], batch_size: int, policy: ErrorPolicy, stop_at: int) -> tuple[Any, ...]:
    world = World()
    first = world.executor("dies:1:1", batch_size)
    run = await first.start("feed.jsonl", ADMIN, error_policy=policy)
    run = run.but(owner=None, portable=True)
    await world.runs.save(run)  # queued for any executor, its feed where any can read it: a job engine's run
    doomed = Feed(rows, stop_at)
    execution = asyncio.ensure_future(first.execute(run, doomed, ADMIN))
    stopped = await asyncio.to_thread(doomed.stopped.wait, 10)
    if stopped:
        execution.cancel()  # dies: nothing of it runs any more, nothing records its end
    doomed.release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await execution
    world.stopped.add("dies:1:1")
    second = world.executor("takes:2:2", batch_size)
    done = await second.execute(run, Feed(rows), ADMIN)
    assert await world.runs.checkpoints(run.run_id) == []  # forgotten once the run ended
    return (done.status, done.counts, *await world.state())


@settings(max_examples=40, deadline=None)
@given(
    stop_at=st.integers(0, len(ROWS) + 1),
    batch_size=st.integers(1, 12),
    policy=st.sampled_from(list(ErrorPolicy)),
    broken=st.sets(st.integers(0, len(ROWS) - 1), max_size=3),
)
def test_a_run_taken_over_at_any_batch_ends_as_an_uninterrupted_run(
    stop_at: int, batch_size: int, policy: ErrorPolicy, broken: set[int]
) -> None:
    rows = [{**row, "lens_width_mm": 7} if index in broken else dict(row) for index, row in enumerate(ROWS)]

    async def scenario() -> None:
        expected = await uninterrupted(rows, batch_size, policy)
        assert await taken_over(rows, batch_size, policy, stop_at) == expected
        assert expected[0] in (RunStatus.SUCCEEDED, RunStatus.REJECTED)

    asyncio.run(scenario())


async def test_a_run_delivered_twice_at_once_is_executed_once() -> None:
    """The job engine delivers at least once (its sweep can hand back a job a worker has just
    taken: tobymao/saq#277); the run's lease makes the second executor's delivery a no-op, whether it
    comes while the first works or after it finished."""
    expected = await uninterrupted(ROWS, 5, ErrorPolicy.SKIP_INVALID)
    world = World()
    first, second = world.executor("one:1:1", 5), world.executor("two:2:2", 5)
    run = await first.start("feed.jsonl", ADMIN)
    run = run.but(owner=None, portable=True)
    await world.runs.save(run)
    slow = Feed(ROWS, stop_at=len(ROWS) // 2, goes_on=True)
    working = asyncio.ensure_future(first.execute(run, slow, ADMIN))
    assert await asyncio.to_thread(slow.stopped.wait, 10)
    meanwhile = await second.execute(run, Feed(ROWS), ADMIN)  # while the first holds it: not taken
    assert (meanwhile.status, meanwhile.owner) == (RunStatus.RUNNING, "one:1:1")
    slow.release.set()
    done = await working
    again = await second.execute(run, Feed(ROWS), ADMIN)  # after it finished: returned as stored
    assert again == done
    assert (done.status, done.counts, *await world.state()) == expected
