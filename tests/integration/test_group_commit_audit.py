"""The database audit sink against a real server: group commit, its failures, cancellation, shutdown.

Each test drives the sink through a client of its own (its ``appName`` scopes the fail points)
whose ``CommandListener`` records every ``insert`` into ``audit_log``: which records it carried
and whether it succeeded. The state checked is MongoDB's, read through another client.
An insert is held in flight with the fail point's ``blockConnection`` where a test needs records
to arrive during one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import BulkWriteError, OperationFailure

from adapters.mongo import group_commit_audit
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.group_commit_audit import GroupCommitAuditLog
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.retries import RetryPolicy
from domain.audit import AuditRecord
from tests.contract.test_audit_log import record
from tests.integration.test_bulk_faults import fail_point

APP = "eyewear-group-commit"
FAST = RetryPolicy(attempts=5, timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
HOLD_MS = 400


@dataclass
class Insert:
    ids: list[str]
    ok: bool | None = None


@dataclass
class Inserts(monitoring.CommandListener):
    """Every insert into the audit log this client sent, in order, with the ids it carried."""

    seen: list[Insert] = field(default_factory=list)
    by_request: dict[int, Insert] = field(default_factory=dict)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command["insert"] == "audit_log":
            insert = Insert([doc["_id"] for doc in event.command["documents"]])
            self.seen.append(insert)
            self.by_request[event.request_id] = insert

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self.by_request:
            self.by_request.pop(event.request_id).ok = True

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.request_id in self.by_request:
            self.by_request.pop(event.request_id).ok = False

    @property
    def carried(self) -> list[list[str]]:
        return [insert.ids for insert in self.seen]

    async def in_flight(self, count: int) -> None:
        """Until the ``count``-th insert has been sent."""
        for _ in range(2000):
            if len(self.seen) >= count:
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"insert {count} was never sent: {self.carried}")


@dataclass
class Rig:
    client: Any
    database: Any  # the fixtures' own client: what any other process would read
    inserts: Inserts
    sink: GroupCommitAuditLog

    async def stored(self) -> list[str]:
        return sorted([doc["_id"] async for doc in self.database["audit_log"].find({}, {"_id": 1})])

    def hold_next_insert(self) -> contextlib.AbstractAsyncContextManager[None]:
        return fail_point(self.client, ["insert"], 1, app=APP, blockConnection=True, blockTimeMS=HOLD_MS)


@pytest.fixture
async def rig(mongo_catalog: MongoCatalog, mongo_url: str) -> AsyncIterator[Rig]:
    inserts = Inserts()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, appname=APP, timeoutMS=10_000, event_listeners=[inserts])
    sink = GroupCommitAuditLog(MongoAuditLog(client[mongo_catalog.database.name]), retry=FAST)
    await sink.start()
    try:
        yield Rig(client, mongo_catalog.database, inserts, sink)
    finally:
        await sink.close()
        await client.close()


def records(start: int, count: int, **fields: Any) -> list[AuditRecord]:
    return [replace(record(i), **fields) for i in range(start, start + count)]


def ids(batch: list[AuditRecord]) -> list[str]:
    return [r.record_id for r in batch]


async def spread(calls: list[Awaitable[Any]], gap: float = 0.001) -> list[asyncio.Task[Any]]:
    """The calls as tasks that start one after another, like requests arriving."""
    tasks = []
    for call in calls:
        tasks.append(asyncio.ensure_future(call))
        await asyncio.sleep(gap)
    return tasks


async def outcomes(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_concurrent_appends_share_one_insert_and_each_is_readable_when_it_returns(rig: Rig) -> None:
    batch = records(0, 200)
    await rig.sink.start()  # again: still one committer

    async def decide(r: AuditRecord) -> bool:
        await rig.sink.append(r)
        return await rig.database["audit_log"].find_one({"_id": r.record_id}) is not None

    assert await asyncio.gather(*(decide(r) for r in batch)) == [True] * 200
    assert rig.inserts.carried == [ids(batch)]  # 200 decisions, one round trip
    assert (rig.sink.inserts, rig.sink.carried) == (1, 200)


async def test_what_arrives_during_an_insert_goes_in_the_next_one_and_waits_for_it(rig: Rig) -> None:
    first, later = records(0, 1), records(1, 100)
    async with rig.hold_next_insert():
        head = asyncio.ensure_future(rig.sink.append(first[0]))
        await rig.inserts.in_flight(1)
        tail = await spread([rig.sink.append(r) for r in later])
        await asyncio.sleep(0.1)
        assert not head.done() and await rig.stored() == []  # not acknowledged: not returned
        assert rig.sink.queued == 100
        assert await outcomes([head, *tail]) == [None] * 101
    assert rig.inserts.carried == [ids(first), ids(later)]
    assert await rig.stored() == ids(first + later)


async def test_an_insert_carries_a_bounded_batch(rig: Rig) -> None:
    rig.sink.batch = 50
    batch = records(0, 120)
    await rig.sink.append_many([])  # nothing to carry: no insert
    await asyncio.gather(*(rig.sink.append(r) for r in batch[:100]), rig.sink.append_many(batch[100:]))
    assert [len(carried) for carried in rig.inserts.carried] == [50, 50, 20]
    assert await rig.stored() == ids(batch)


async def test_a_failing_insert_fails_every_waiter_it_carried_and_no_other(rig: Rig) -> None:
    first, doomed, after = records(0, 1), records(1, 20), records(21, 20)
    async with rig.hold_next_insert():
        head = asyncio.ensure_future(rig.sink.append(first[0]))
        await rig.inserts.in_flight(1)
        # The next insert (the one that will carry the records arriving now) is refused.
        await rig.client.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {"failCommands": ["insert"], "appName": APP, "errorCode": 2},
            }
        )
        middle = await spread([rig.sink.append(r) for r in doomed])
        assert await outcomes([head]) == [None]
        failed = await outcomes(middle)
        assert await asyncio.gather(*(rig.sink.append(r) for r in after)) == [None] * 20
    assert all(isinstance(e, OperationFailure) and e.code == 2 for e in failed), failed
    assert len({id(e) for e in failed}) == 1  # the insert's own error, raised to each of its waiters
    assert rig.inserts.carried == [ids(first), ids(doomed), ids(after)]
    assert [insert.ok for insert in rig.inserts.seen] == [True, False, True]
    assert await rig.stored() == ids(first + after)


@pytest.mark.parametrize(
    "fault",
    [
        {"closeConnection": True},  # the driver retries once, then the sink
        {"errorCode": 50},  # MaxTimeMSExpired: the sink alone retries it
    ],
)
async def test_transient_failures_are_retried_and_every_waiter_gets_through(rig: Rig, fault: dict[str, Any]) -> None:
    batch = records(0, 30)
    async with fail_point(rig.client, ["insert"], 2, app=APP, **fault):
        assert await asyncio.gather(*(rig.sink.append(r) for r in batch)) == [None] * 30
    assert [insert.ok for insert in rig.inserts.seen] == [False, False, True]
    assert rig.inserts.carried == [ids(batch)] * 3
    assert rig.sink.inserts == 1
    assert await rig.stored() == ids(batch)


async def test_a_record_the_server_refuses_fails_its_own_waiter_only(rig: Rig) -> None:
    """An unordered insert stores the others: failing them too would refuse answers already recorded."""
    audit_log = rig.database["audit_log"]
    info = (await rig.database.command("listCollections", filter={"name": "audit_log"}))["cursor"]["firstBatch"][0]
    validator = info["options"]["validator"]
    stricter = {"$jsonSchema": {**validator["$jsonSchema"]}}
    stricter["$jsonSchema"]["properties"] = {
        **validator["$jsonSchema"]["properties"],
        "resource": {"bsonType": "string", "maxLength": 40},
    }
    batch = records(0, 10)
    batch[4] = replace(batch[4], resource="product:" + "x" * 60)
    await rig.database.command({"collMod": audit_log.name, "validator": stricter})
    try:
        results = await asyncio.gather(*(rig.sink.append(r) for r in batch), return_exceptions=True)
    finally:
        await rig.database.command({"collMod": audit_log.name, "validator": validator})
    assert isinstance(results[4], BulkWriteError)
    assert results[:4] + results[5:] == [None] * 9
    assert rig.inserts.carried == [ids(batch)]
    assert await rig.stored() == ids(batch[:4] + batch[5:])


async def test_a_write_concern_error_fails_every_waiter_of_the_insert(rig: Rig) -> None:
    """Stored, but not as durably as asked: the answers cannot say the records are safe."""
    batch = records(0, 10)
    async with fail_point(rig.client, ["insert"], 1, app=APP, writeConcernError={"code": 64, "errmsg": "not durable"}):
        results = await asyncio.gather(*(rig.sink.append(r) for r in batch), return_exceptions=True)
        assert await rig.sink.append(record(10)) is None  # the next insert is another's
    assert all(isinstance(e, BulkWriteError) for e in results), results
    assert rig.inserts.carried == [ids(batch), ["r0010"]]


async def test_a_cancelled_waiter_loses_no_record(rig: Rig) -> None:
    first, later = records(0, 1), records(1, 40)
    async with rig.hold_next_insert():
        head = asyncio.ensure_future(rig.sink.append(first[0]))
        await rig.inserts.in_flight(1)
        tail = await spread([rig.sink.append(r) for r in later])
        cancelled = [head, *tail[::4]]  # the one in flight and every fourth one queued
        for task in cancelled:
            task.cancel()
        results = await outcomes([head, *tail])
    assert [isinstance(r, asyncio.CancelledError) for r in results] == [t in cancelled for t in [head, *tail]]
    assert all(r is None for r in results if not isinstance(r, asyncio.CancelledError))
    assert rig.inserts.carried == [ids(first), ids(later)]
    assert await rig.stored() == ids(first + later)


async def test_close_inserts_what_is_queued_then_refuses_appends(rig: Rig) -> None:
    first, later = records(0, 1), records(1, 30)
    async with rig.hold_next_insert():
        head = asyncio.ensure_future(rig.sink.append(first[0]))
        await rig.inserts.in_flight(1)
        tail = await spread([rig.sink.append(r) for r in later])
        await rig.sink.close()
        assert all(task.done() for task in (head, *tail))
    assert await outcomes([head, *tail]) == [None] * 31
    assert await rig.stored() == ids(first + later)
    assert not rig.sink.running
    with pytest.raises(RuntimeError, match="not running"):
        await rig.sink.append(record(99))


async def test_close_gives_up_on_an_insert_that_hangs_and_fails_its_waiters(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: no caller is told its record is stored when the sink could not store it."""
    monkeypatch.setattr(group_commit_audit, "STOP_WAIT", 0.1)
    async with rig.hold_next_insert():
        head = asyncio.ensure_future(rig.sink.append(record(0)))
        await rig.inserts.in_flight(1)
        tail = await spread([rig.sink.append(r) for r in records(1, 5)])
        await rig.sink.close()
        results = await outcomes([head, *tail])
        await asyncio.sleep(HOLD_MS / 1000 + 0.2)  # the server's blocked insert ends before the next test
    assert all(isinstance(r, RuntimeError) and "stopped before" in str(r) for r in results), results
    assert rig.sink.queued == 0
