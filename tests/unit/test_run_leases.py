"""Run leases (``application/run_leases.py``) over the memory twins: a run nobody works on any more is
recorded interrupted by the next process that looks, once; what it wrote can be rolled back; a
process whose run was taken from it stops and stores nothing over the record."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.feeds.sample_feed import generate_rows
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from adapters.memory.executors import KnownExecutors
from adapters.memory.ingestion_runs import MemoryIngestionRuns
from application.authorization import Authorizer
from application.ingestion import IngestFeed
from application.ingestion_queries import GetRun, ListRuns
from application.ingestion_rollback import RollbackRun
from application.run_leases import RunLeases
from domain.feed_rows import FeedRow
from domain.ingestion import INTERRUPTED, RunStatus
from tests.builders import SANITIZER, caller

ADMIN = caller("admin", "admin")
ROWS = list(generate_rows(styles=6, seed=11))
DEAD, ALIVE = "host:100:1", "host:200:2"


class Feed:
    """The sample rows; ``pause_after`` rows, it waits until ``resume`` is set (a stalled process)."""

    name = "feed.jsonl"

    def __init__(self, pause_after: int | None = None) -> None:
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.resume = threading.Event()

    def rows(self) -> Iterator[FeedRow]:
        for index, row in enumerate(ROWS):
            if index == self.pause_after:
                self.paused.set()
                self.resume.wait(30)
            yield FeedRow(index + 1, dict(row))


class World:
    def __init__(self, lease_seconds: float = 30.0) -> None:
        self.clock = FixedClock()
        self.catalog = MemoryCatalog()
        self.runs = MemoryIngestionRuns()
        self.authorizer = Authorizer(MemoryAuditLog(), self.clock)
        self.lease_seconds = lease_seconds
        self.executors: dict[str, KnownExecutors] = {}
        self.stopped: set[str] = set()

    def process(self, owner: str) -> RunLeases:
        """What ``owner``'s process knows: itself, and the owners this world says are gone."""
        executors = self.executors.setdefault(owner, KnownExecutors(owner))
        executors.stopped = self.stopped  # one host: every process sees the same exits
        return RunLeases(self.runs, self.catalog, self.clock, executors, lease_seconds=self.lease_seconds)

    def ingest(self, owner: str, batch_size: int = 5) -> IngestFeed:
        return IngestFeed(
            self.catalog,
            self.runs,
            self.clock,
            SANITIZER,
            self.authorizer,
            batch_size=batch_size,
            leases=self.process(owner),
        )

    def stop(self, owner: str) -> None:
        """``owner``'s process exited: every process of the host can tell."""
        self.stopped.add(owner)


async def a_run_left_running(world: World, owner: str) -> tuple[str, set[str]]:
    """A run that ``owner`` claimed and wrote a batch of, then died without a word (its task is
    cancelled: nothing of it runs any more, nothing records its end): its id and the products it wrote."""
    feed = Feed(pause_after=10)
    execution = asyncio.ensure_future(world.ingest(owner)(feed, ADMIN))
    assert await asyncio.to_thread(feed.paused.wait, 10)
    (run,) = [run for run in await world.runs.unfinished(100) if run.owner == owner]
    for _ in range(200):  # the counts of the batch written ride on the next renewal
        stored = await world.runs.get(run.run_id)
        if stored is not None and stored.counts.rows:
            break
        await asyncio.sleep(0.01)
    execution.cancel()
    feed.resume.set()
    with pytest.raises(asyncio.CancelledError):
        await execution
    written = {entry.product_id async for entry in world.catalog.entries_from(f"ingestion:{run.run_id}")}
    return run.run_id, written  # empty when an earlier run of the same rows wrote them already


async def test_a_run_whose_lease_lapsed_is_interrupted_by_the_next_reader_and_can_be_rolled_back() -> None:
    world = World(lease_seconds=0.3)
    run_id, written = await a_run_left_running(world, DEAD)
    assert written
    reader = world.process(ALIVE)
    assert (await GetRun(world.runs, world.authorizer, reader)(run_id, ADMIN)).status is RunStatus.RUNNING  # live lease
    world.clock.advance(1)
    seen = await GetRun(world.runs, world.authorizer, reader)(run_id, ADMIN)
    assert (seen.status, seen.reason, seen.counts.rows) == (RunStatus.FAILED, INTERRUPTED, 5)
    assert await world.runs.get(run_id) == seen
    assert [r.status for r in await ListRuns(world.runs, world.authorizer, reader)(ADMIN)] == [RunStatus.FAILED]
    assert await reader.settle(seen) == seen  # settled once: a second look changes nothing
    undone = await RollbackRun(world.catalog, world.runs, world.clock, world.authorizer, leases=reader)(run_id, ADMIN)
    assert undone.status is RunStatus.ROLLED_BACK
    assert await world.catalog.get_many(written) == {}


async def test_a_run_whose_owner_exited_is_interrupted_at_once_before_its_lease_lapses() -> None:
    world = World(lease_seconds=0.3)
    run_id, written = await a_run_left_running(world, DEAD)
    assert written
    rollback = RollbackRun(world.catalog, world.runs, world.clock, world.authorizer, leases=world.process(ALIVE))
    world.stop(DEAD)
    undone = await rollback(run_id, ADMIN)  # a rollback looks too: interrupted first, then undone
    assert undone.status is RunStatus.ROLLED_BACK
    assert await world.catalog.get_many(written) == {}


async def test_a_new_run_settles_dead_runs_first_and_converges() -> None:
    world = World(lease_seconds=0.3)
    dead_run, _ = await a_run_left_running(world, DEAD)
    world.stop(DEAD)
    rerun = await world.ingest(ALIVE)(Feed(), ADMIN)
    assert rerun.status is RunStatus.SUCCEEDED
    assert rerun.counts.rows == len(ROWS) and rerun.counts.unchanged == 5  # what the dead run wrote
    dead = await world.runs.get(dead_run)
    assert dead is not None and (dead.status, dead.reason) == (RunStatus.FAILED, INTERRUPTED)
    assert (rerun.owner, rerun.lease_until) == (ALIVE, None)  # finished: the lease is dropped


async def test_a_process_whose_run_was_declared_interrupted_stops_and_stores_nothing_over_it() -> None:
    world = World(lease_seconds=0.15)  # renewed every 0.05 s
    feed = Feed(pause_after=12)
    execution = asyncio.ensure_future(world.ingest(ALIVE)(feed, ADMIN))
    assert await asyncio.to_thread(feed.paused.wait, 10)
    run = (await world.runs.unfinished(1))[0]
    renewed = run.lease_until
    await asyncio.sleep(0.2)
    run = await world.runs.get(run.run_id)
    assert run is not None and run.lease_until is not None and renewed is not None and run.lease_until > renewed
    assert run.counts.rows == 5  # the counts so far (one batch written) ride on the renewals
    # Another process finds the lease lapsed (this one stalled): it records the run interrupted.
    world.clock.advance(60)
    settled = await world.process(DEAD).settle_all()
    assert [r.run_id for r in settled] == [run.run_id]
    feed.resume.set()
    outcome = await asyncio.wait_for(execution, 10)
    assert (outcome.status, outcome.reason) == (RunStatus.FAILED, INTERRUPTED)
    assert await world.runs.get(run.run_id) == settled[0]  # the stalled process stored nothing over it


async def test_shutdown_gives_the_run_up_as_interrupted() -> None:
    world = World()
    feed = Feed(pause_after=7)
    ingest = world.ingest(ALIVE)
    execution = asyncio.ensure_future(ingest(feed, ADMIN))
    assert await asyncio.to_thread(feed.paused.wait, 10)
    run = (await world.runs.unfinished(1))[0]
    await ingest.abandon(run.run_id)
    feed.resume.set()
    outcome = await asyncio.wait_for(execution, 10)
    assert (outcome.status, outcome.reason) == (RunStatus.FAILED, INTERRUPTED)


@pytest.mark.parametrize("lease", [0.0, -1.0])
def test_a_lease_must_be_positive(lease: float) -> None:
    world = World()
    with pytest.raises(ValueError, match="positive"):
        RunLeases(world.runs, world.catalog, world.clock, lease_seconds=lease)


def test_renewals_leave_three_chances_and_counts_at_most_five_seconds_old() -> None:
    world = World()
    assert [RunLeases(world.runs, world.catalog, world.clock, lease_seconds=s).renew_every for s in (3, 30, 300)] == [
        1.0,
        5.0,
        5.0,
    ]


async def test_the_reaper_settles_at_start_and_survives_a_failing_sweep(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from adapters.files.feed_spool import FeedSpool, SpooledFeeds
    from adapters.memory.run_queue import InProcessRunQueue
    from application.run_execution import ExecuteQueuedRun
    from entrypoints import run_reaper
    from entrypoints.container import Runs

    def runs_of(world: World, leases: RunLeases) -> Runs:
        spool = FeedSpool(tmp_path / "spool", KnownExecutors(ALIVE))
        feeds = SpooledFeeds(spool)
        execute = ExecuteQueuedRun(world.ingest(ALIVE), world.runs, feeds, hand_back=False)
        return Runs(InProcessRunQueue(), feeds, execute, leases, spool, elsewhere=False)

    world = World(lease_seconds=0.3)
    run_id, _ = await a_run_left_running(world, DEAD)
    world.stop(DEAD)
    async with run_reaper.run_reaper(runs_of(world, world.process(ALIVE))):
        stored = await world.runs.get(run_id)
        assert stored is not None and stored.reason == INTERRUPTED  # swept before the server serves

    class Broken(MemoryIngestionRuns):
        async def unfinished(self, limit: int) -> list[Any]:
            raise ConnectionError("the database is away")

    broken = RunLeases(Broken(), world.catalog, world.clock, lease_seconds=0.02)
    monkeypatch.setattr(run_reaper, "MAX_PAUSE", 0.01)
    async with run_reaper.run_reaper(runs_of(world, broken)):
        await asyncio.sleep(0.05)  # several sweeps fail; none escapes
    assert run_reaper.pause_for(world.process(ALIVE)) == 0.01


async def test_with_a_job_engine_only_a_portable_run_goes_back_to_the_queue() -> None:
    """A run whose feed is in the shared store is queued again, and submitted at once; one that read a
    file of its dead process (``eyewear ingest``) cannot be taken over: it is interrupted."""
    from adapters.memory.run_queue import InProcessRunQueue

    world = World(lease_seconds=0.3)
    local_run, _ = await a_run_left_running(world, DEAD)
    shared_run, _ = await a_run_left_running(world, "host:300:3")
    shared = await world.runs.get(shared_run)
    assert shared is not None
    await world.runs.save(shared.but(portable=True))
    world.stop(DEAD)
    world.stop("host:300:3")
    queue = InProcessRunQueue()
    executors = KnownExecutors(ALIVE)
    executors.stopped = world.stopped
    leases = RunLeases(world.runs, world.catalog, world.clock, executors, requeue=True, queue=queue)
    settled = {run.run_id: run for run in await leases.settle_all()}
    assert (settled[local_run].status, settled[local_run].reason) == (RunStatus.FAILED, INTERRUPTED)
    assert (settled[shared_run].status, settled[shared_run].owner) == (RunStatus.QUEUED, None)
    assert queue.queued == {shared_run}  # resubmitted by the settling, not left for a sweep
