"""The audit journal against a real server: nothing lost to a killed process or an unreachable log.

A record is in the journal file when ``append`` returns; these tests check that it then reaches
MongoDB exactly once whatever happens in between: the writer SIGKILLed before it shipped, a crash
after the insert but before the truncation (shipped twice), MongoDB refusing inserts for a while.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from adapters.files import audit_journal
from adapters.files.audit_journal import JournaledAuditLog, decode_records, encode_record
from adapters.memory.audit_log import MemoryAuditLog
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.product_repository import MongoCatalog
from domain.audit import AuditQuery, AuditRecord
from tests.contract.test_audit_log import record
from tests.integration.test_bulk_faults import fail_point

APP = "eyewear-audit-journal"
ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from pymongo import AsyncMongoClient
    from adapters.files.audit_journal import JournaledAuditLog
    from adapters.mongo.audit_log import MongoAuditLog
    from tests.contract.test_audit_log import record

    async def main(url, db, directory, count):
        client = AsyncMongoClient(url, tz_aware=True)
        journal = JournaledAuditLog(MongoAuditLog(client[db]), Path(directory), linger=3600)
        await journal.start()
        for i in range(count):
            await journal.append(record(i, actor="killed"))
        print("appended", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


async def stored(database: Any, **query: Any) -> list[str]:
    return sorted([doc["_id"] async for doc in database["audit_log"].find(query, {"_id": 1})])


@pytest.fixture
async def database(mongo_catalog: MongoCatalog) -> Any:
    return mongo_catalog.database


async def test_records_of_a_killed_process_reach_the_log_once(database: Any, mongo_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        mongo_url,
        database.name,
        str(directory),
        "40",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None
        assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"appended\n"
        segments = list(directory.glob("*.jsonl"))
        assert len(segments) == 1
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(segments[0].stat().st_mode) == 0o600

        survivor = JournaledAuditLog(MongoAuditLog(database), directory)
        await survivor.start()  # the writer is alive: its segment is not ours to ship
        assert segments[0].exists() and await stored(database) == []

        os.kill(writer.pid, signal.SIGKILL)
        await asyncio.wait_for(writer.wait(), 10)
        first_ten = decode_records(segments[0].read_bytes(), "test")[:10]
        await MongoAuditLog(database).append_many(first_ten)  # as if it died after an insert
        assert await survivor.recover_orphans() == 40
        await survivor.close()
    finally:
        if writer.returncode is None:
            writer.kill()
            await writer.wait()
    assert await stored(database, actor="killed") == [f"r{i:04d}" for i in range(40)]
    assert list(directory.glob("*.jsonl")) == []


async def test_a_torn_last_line_is_skipped_and_the_rest_shipped(database: Any, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    whole = encode_record(record(1)) + encode_record(record(2))
    (directory / "999999-dead.jsonl").write_bytes(whole + encode_record(record(3))[:20])
    journal = JournaledAuditLog(MongoAuditLog(database), directory)
    await journal.start()
    await journal.close()
    assert await stored(database) == ["r0001", "r0002"]


@pytest.fixture
async def faulty_log(database: Any, mongo_url: str) -> AsyncIterator[tuple[Any, MongoAuditLog]]:
    """A client of its own, so that the fail points (scoped by ``appName``) hit only this log."""
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, appname=APP, timeoutMS=10_000)
    try:
        yield client, MongoAuditLog(client[database.name])
    finally:
        await client.close()


async def test_an_unreachable_log_delays_records_but_loses_none(
    database: Any, faulty_log: tuple[Any, MongoAuditLog], tmp_path: Path
) -> None:
    client, durable = faulty_log
    journal = JournaledAuditLog(durable, tmp_path / "journal", linger=0.01)
    await journal.start()
    try:
        async with fail_point(client, ["insert"], "alwaysOn", app=APP, errorCode=2):
            for i in range(5):
                await journal.append(record(i))  # answers go on while the log refuses
            await asyncio.sleep(0.3)
            assert journal.pending_bytes > 0
            assert await stored(database) == []
            with pytest.raises(OperationFailure):
                await journal.query(AuditQuery())  # a read cannot pretend the log is complete
        for _ in range(100):  # the shipper retries with back-off
            if journal.pending_bytes == 0:
                break
            await asyncio.sleep(0.05)
        assert await stored(database) == [f"r{i:04d}" for i in range(5)]
    finally:
        await journal.close()


async def test_closing_while_the_log_is_down_leaves_the_segment_for_the_next_process(
    database: Any, faulty_log: tuple[Any, MongoAuditLog], tmp_path: Path
) -> None:
    client, durable = faulty_log
    directory = tmp_path / "journal"
    journal = JournaledAuditLog(durable, directory, linger=3600)
    await journal.start()
    async with fail_point(client, ["insert"], "alwaysOn", app=APP, errorCode=2):
        await journal.append(record(7))
        await journal.close()
    assert [path.name for path in directory.glob("*.jsonl")] == [journal.segment.name]
    assert await stored(database) == []

    successor = JournaledAuditLog(MongoAuditLog(database), directory)
    await successor.start()
    await successor.close()
    assert await stored(database) == ["r0007"]
    assert list(directory.glob("*.jsonl")) == []


async def test_another_process_sees_a_decision_within_the_linger(database: Any, tmp_path: Path) -> None:
    """No read of this process flushes the writer: its shipper alone brings the record over."""
    writer = JournaledAuditLog(MongoAuditLog(database), tmp_path / "journal", linger=0.05)
    await writer.start()
    try:
        await writer.append(record(1))
        for _ in range(40):
            if await stored(database) == ["r0001"]:
                break
            await asyncio.sleep(0.025)
        assert await stored(database) == ["r0001"]
        assert writer.pending_bytes == 0
        assert writer.segment.stat().st_size == 0  # emptied once shipped: the file stays small
    finally:
        await writer.close()
    assert not writer.segment.exists()


class CountingLog(MemoryAuditLog):
    """The durable log, recording the size of each insert; ``fail_after`` inserts then refuses one."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.fail_after = fail_after

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        if self.fail_after is not None and len(self.sizes) == self.fail_after:
            self.fail_after = None
            raise ConnectionError("the log went away")
        self.sizes.append(len(records))
        await super().append_many(records)


async def test_a_backlog_is_shipped_in_bounded_inserts_and_a_failure_keeps_only_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_journal, "SHIP_LINES", 4)
    durable = CountingLog(fail_after=2)
    journal = JournaledAuditLog(durable, tmp_path / "journal", linger=3600)
    await journal.start()
    try:
        await journal.append_many([record(i) for i in range(10)])
        with pytest.raises(ConnectionError):
            await journal.flush()  # two inserts of 4 went in, the third failed
        assert durable.sizes == [4, 4] and journal.pending_bytes == len(encode_record(record(8))) * 2
        await journal.flush()
        assert durable.sizes == [4, 4, 2]
        page = await durable.query(AuditQuery(limit=50))
        assert sorted(r.record_id for r in page.items) == [f"r{i:04d}" for i in range(10)]
    finally:
        await journal.close()


class SlowLog(MemoryAuditLog):
    """A durable log that stores records slower than they come (an overloaded server): 20 ms per insert."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        await asyncio.sleep(0.02)
        if self.down:
            raise ConnectionError("the log is away")
        await super().append_many(records)


async def test_appends_wait_for_a_lagging_log_so_no_decision_waits_long_to_be_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-pressure: the backlog never grows past the limit (plus one append's records), so another
    process sees each decision within the time one limit's worth of inserts takes; while the log
    fails, appends go on at disk speed (an outage does not stop the answers)."""
    monkeypatch.setattr(audit_journal, "BACKLOG_RECORDS", 50)
    monkeypatch.setattr(audit_journal, "SHIP_LINES", 10)
    durable = SlowLog()
    journal = JournaledAuditLog(durable, tmp_path / "journal", linger=0.001)
    await journal.start()
    try:
        backlog: list[int] = []
        for i in range(600):
            await journal.append(record(i, actor="busy"))
            backlog.append(journal._pending)
        assert max(backlog) <= 50 + 1, f"the backlog grew to {max(backlog)}"
        await journal.flush()
        assert len((await durable.query(AuditQuery(actor="busy", limit=1000))).items) == 600

        durable.down = True
        await journal.append(record(600, actor="busy"))
        with pytest.raises(ConnectionError):
            await journal.flush()  # the log is found away
        started = asyncio.get_running_loop().time()
        for i in range(601, 800):
            await journal.append(record(i, actor="busy"))
        assert asyncio.get_running_loop().time() - started < 1.0, "appends waited for a log that is away"
        durable.down = False
        await journal.flush()
        assert len((await durable.query(AuditQuery(actor="busy", limit=1000))).items) == 800
    finally:
        await journal.close()
