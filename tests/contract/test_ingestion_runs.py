"""The ingestion runs contract (``IngestionRuns``): the same assertions against every adapter of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.memory.ingestion_runs import MemoryIngestionRuns
from adapters.mongo.ingestion_runs import MongoIngestionRuns
from domain.feed_rows import RowError
from domain.ingestion import Check, ErrorPolicy, IngestionRun, RunCounts, RunStatus

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture(params=["memory", "mongo"])
def runs(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryIngestionRuns()
    return MongoIngestionRuns(request.getfixturevalue("mongo_catalog").database)  # emptied first


def run(run_id: str = "run-1", created_at: datetime = T0, **changes: Any) -> IngestionRun:
    base = IngestionRun(
        run_id=run_id,
        status=RunStatus.QUEUED,
        dry_run=False,
        error_policy=ErrorPolicy.SKIP_INVALID,
        source="feed.jsonl",
        actor="ingestor-1",
        created_at=created_at,
    )
    return base.but(**changes)


def row_error(line: int, sku: str | None = "RB3016-A", field: str | None = "price") -> RowError:
    return RowError(line, sku, field, "invalid_value", f"line {line} is wrong")


async def test_a_finished_run_round_trips_with_every_field(runs: Any) -> None:
    finished = run(
        status=RunStatus.ROLLED_BACK,
        dry_run=True,
        error_policy=ErrorPolicy.REJECT_ALL,
        counts=RunCounts(rows=10, valid=7, invalid=3, created=4, updated=2, unchanged=1, products_created=2),
        checks=(Check("rows", True, "10 = 7 + 3"), Check("readable", False, "RB3016-A differs")),
        started_at=T0 + timedelta(milliseconds=1),
        finished_at=T0 + timedelta(seconds=2, milliseconds=5),
        reason="a data-flow check failed",
        unknown_fields={"colour": 3, "a.b": 1, "$weird": 2},
        rolled_back_at=T0 + timedelta(hours=1),
        rolled_back_by="manager-1",
    )
    await runs.add(finished)
    stored = await runs.get("run-1")
    assert stored == finished
    assert stored.created_at.tzinfo is not None and stored.finished_at.microsecond == 128000
    assert await runs.get("nope") is None


async def test_add_keeps_the_first_record_and_save_replaces_it(runs: Any) -> None:
    queued = run()
    await runs.add(queued)
    await runs.add(queued.but(status=RunStatus.RUNNING))
    assert await runs.get("run-1") == queued
    running = queued.but(status=RunStatus.RUNNING, started_at=T0 + timedelta(seconds=1))
    await runs.save(running)
    assert await runs.get("run-1") == running
    done = running.but(status=RunStatus.SUCCEEDED, counts=RunCounts(rows=1, valid=1, created=1))
    await runs.save(done)
    assert await runs.get("run-1") == done


async def test_recent_runs_newest_first_then_by_run_id(runs: Any) -> None:
    for run_id, offset in [("b", 0), ("a", 0), ("c", 5), ("d", 2)]:
        await runs.add(run(run_id, T0 + timedelta(seconds=offset)))
    assert [r.run_id for r in await runs.recent(10)] == ["c", "d", "b", "a"]
    assert [r.run_id for r in await runs.recent(2)] == ["c", "d"]
    assert await runs.recent(0) == []


async def test_errors_page_in_order_after_a_number(runs: Any) -> None:
    await runs.add(run())
    await runs.add_errors("run-1", 0, [row_error(line) for line in range(2, 7)])
    await runs.add_errors("run-2", 0, [row_error(99)])
    first = await runs.errors("run-1", None, 2)
    assert first == [(0, row_error(2)), (1, row_error(3))]
    assert [seq for seq, _ in await runs.errors("run-1", 1, 2)] == [2, 3]
    assert await runs.errors("run-1", 3, 10) == [(4, row_error(6))]
    assert await runs.errors("run-1", 4, 10) == []
    assert await runs.errors("nope", None, 10) == []
    assert await runs.errors("run-2", None, 10) == [(0, row_error(99))]


async def test_storing_a_number_twice_keeps_one(runs: Any) -> None:
    await runs.add_errors("run-1", 0, [row_error(1), row_error(2)])
    await runs.add_errors("run-1", 0, [row_error(1), row_error(2)])  # a retried page
    await runs.add_errors("run-1", 1, [row_error(50), row_error(3)])  # overlapping: 1 is kept, 2 is new
    await runs.add_errors("run-1", 3, [])
    assert await runs.errors("run-1", None, 10) == [(0, row_error(1)), (1, row_error(2)), (2, row_error(3))]


async def test_row_errors_without_sku_or_field(runs: Any) -> None:
    whole_row = RowError(7, None, None, "malformed_row", "not JSON: Expecting value")
    await runs.add_errors("run-1", 10, [whole_row, row_error(8, sku=None), row_error(9, field=None)])
    assert await runs.errors("run-1", None, 10) == [
        (10, whole_row),
        (11, row_error(8, sku=None)),
        (12, row_error(9, field=None)),
    ]


# Leases: conditional on who holds the run, so two processes never both work on one.
OWNER, OTHER = "host-a:101:5", "host-b:202:7"
LEASE = T0 + timedelta(seconds=30)


async def test_a_queued_run_is_claimed_once_and_then_only_its_owner_renews_and_finishes_it(runs: Any) -> None:
    await runs.add(run(owner=OWNER, lease_until=T0))
    claimed = await runs.claim("run-1", OWNER, LEASE, "writer-1", T0 + timedelta(seconds=1))
    assert claimed is not None and claimed == await runs.get("run-1")
    assert (claimed.status, claimed.owner, claimed.lease_until, claimed.writer) == (
        RunStatus.RUNNING,
        OWNER,
        LEASE,
        "writer-1",
    )
    assert claimed.started_at == T0 + timedelta(seconds=1)
    assert await runs.claim("run-1", OTHER, LEASE, "writer-2", T0) is None  # taken
    assert await runs.claim("run-1", OWNER, LEASE, "writer-1", T0) == claimed  # a retried claim: the same answer
    counts = RunCounts(rows=500, valid=500, created=500, products_created=100)
    assert await runs.renew("run-1", OWNER, LEASE + timedelta(seconds=30), counts)
    assert not await runs.renew("run-1", OTHER, LEASE, RunCounts())
    renewed = await runs.get("run-1")
    assert (renewed.lease_until, renewed.counts) == (LEASE + timedelta(seconds=30), counts)
    done = renewed.but(status=RunStatus.SUCCEEDED, finished_at=LEASE, lease_until=None)
    assert not await runs.finish(done, OTHER)
    assert await runs.finish(done, OWNER)
    assert await runs.finish(done, OWNER)  # a retried finish finds itself stored
    assert await runs.get("run-1") == done
    assert not await runs.renew("run-1", OWNER, LEASE, counts)  # finished: nothing to renew
    assert await runs.interrupt("run-1", OWNER, LEASE) is None
    assert await runs.unfinished(10) == []


async def test_a_queued_run_without_an_owner_is_claimed_by_whoever_comes_first(runs: Any) -> None:
    await runs.add(run())
    assert await runs.unfinished(10) == [run()]
    assert (await runs.claim("run-1", OTHER, LEASE, None, T0)).owner == OTHER
    assert await runs.claim("run-1", OWNER, LEASE, None, T0) is None
    assert await runs.claim("missing", OWNER, LEASE, None, T0) is None


async def test_an_interrupted_run_is_failed_once_and_its_owner_can_no_longer_store_it(runs: Any) -> None:
    await runs.add(run(owner=OWNER))
    claimed = await runs.claim("run-1", OWNER, LEASE, "w", T0)
    assert await runs.interrupt("run-1", OTHER, LEASE) is None  # not the holder named
    interrupted = await runs.interrupt("run-1", OWNER, LEASE)
    assert interrupted == claimed.but(
        status=RunStatus.FAILED, reason="interrupted", finished_at=LEASE, lease_until=None
    )
    assert await runs.get("run-1") == interrupted
    assert await runs.interrupt("run-1", OWNER, LEASE) is None  # once only
    assert not await runs.renew("run-1", OWNER, LEASE, RunCounts())
    assert not await runs.finish(claimed.but(status=RunStatus.SUCCEEDED, finished_at=LEASE), OWNER)
    assert await runs.get("run-1") == interrupted


async def test_unfinished_runs_are_listed_oldest_first(runs: Any) -> None:
    for n in (3, 1, 2):
        await runs.add(run(f"run-{n}", created_at=T0 + timedelta(seconds=n), owner=OWNER))
    await runs.save(run("run-9", status=RunStatus.SUCCEEDED))
    await runs.claim("run-2", OWNER, LEASE, None, T0)
    listed = await runs.unfinished(10)
    assert [r.run_id for r in listed] == ["run-1", "run-2", "run-3"]
    assert [r.status for r in listed] == [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.QUEUED]
    assert [r.run_id for r in await runs.unfinished(2)] == ["run-1", "run-2"]
    assert await runs.unfinished(0) == []
    queued = await runs.interrupt("run-3", OWNER, LEASE)  # a queued run of a dead process is interrupted too
    assert queued is not None and queued.status is RunStatus.FAILED
