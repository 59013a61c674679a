"""The audit log contract: the same assertions against every adapter of the port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.files.audit_journal import JournaledAuditLog
from adapters.memory.audit_log import MemoryAuditLog
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.group_commit_audit import GroupCommitAuditLog
from adapters.mongo.product_repository import MongoCatalog
from domain.audit import AuditDecision, AuditQuery, AuditRecord, parse_audit_query
from domain.errors import ValidationFailed

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "mongo"])
def durable_log(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryAuditLog()
    catalog: MongoCatalog = request.getfixturevalue("mongo_catalog")  # empties the database
    return MongoAuditLog(catalog.database)


@pytest.fixture(params=["direct", "journal", "group_commit"])
async def audit_log(request: pytest.FixtureRequest, durable_log: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """The two sinks (EYEWEAR_AUDIT_SINK) run the same assertions over each durable log, reading
    right after writing."""
    if request.param == "direct":
        yield durable_log
        return
    sink: JournaledAuditLog | GroupCommitAuditLog
    if request.param == "journal":
        sink = JournaledAuditLog(durable_log, tmp_path / "journal")
    else:
        sink = GroupCommitAuditLog(durable_log)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


def record(
    i: int, actor: str = "alice", action: str = "product:read", decision: str = "allow", at: datetime | None = None
) -> AuditRecord:
    return AuditRecord(
        record_id=f"r{i:04d}",
        at=at or T0 + timedelta(seconds=i),
        actor=actor,
        roles=("viewer",),
        action=action,
        resource=f"product:p{i}",
        decision=AuditDecision(decision),
        reason="granted product:read" if decision == "allow" else "no role grants it",
        correlation_id=f"req-{i}",
        client_ip="127.0.0.1",
    )


async def test_records_come_back_newest_first_as_written(audit_log: Any) -> None:
    written = [record(i) for i in range(3)]
    for r in written:
        await audit_log.append(r)
    page = await audit_log.query(AuditQuery())
    assert page.items == tuple(reversed(written))
    assert page.next_cursor is None


async def test_filters_combine(audit_log: Any) -> None:
    await audit_log.append(record(1, actor="alice", decision="deny", action="product:write"))
    await audit_log.append(record(2, actor="bob", decision="deny", action="product:write"))
    await audit_log.append(record(3, actor="alice", decision="allow"))
    await audit_log.append(record(4, actor="anonymous", decision="deny", action="authenticate"))

    async def ids(**params: str) -> list[str]:
        return [r.record_id for r in (await audit_log.query(parse_audit_query(params))).items]

    assert await ids(actor="alice") == ["r0003", "r0001"]
    assert await ids(decision="deny") == ["r0004", "r0002", "r0001"]
    assert await ids(actor="alice", decision="deny") == ["r0001"]
    assert await ids(action="authenticate") == ["r0004"]
    assert await ids(action="product:write", actor="bob", decision="allow") == []


async def test_pages_cover_everything_once_even_with_equal_times(audit_log: Any) -> None:
    for i in range(7):
        await audit_log.append(record(i, at=T0 + timedelta(seconds=i // 3)))
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        page = await audit_log.query(parse_audit_query(params))
        seen += [r.record_id for r in page.items]
        if page.next_cursor is None:
            break
        params["cursor"] = page.next_cursor
    assert seen == [f"r{i:04d}" for i in (6, 5, 4, 3, 2, 1, 0)]


async def test_appending_a_record_again_keeps_it_once(audit_log: Any) -> None:
    """A journal shipped twice (a crash between the insert and the truncation) must not double it."""
    first = [record(i) for i in range(3)]
    await audit_log.append_many(first)
    await audit_log.append_many([first[1], record(3), first[2]])
    await audit_log.append(first[0])
    page = await audit_log.query(AuditQuery())
    assert [r.record_id for r in page.items] == ["r0003", "r0002", "r0001", "r0000"]
    assert page.items[-1] == first[0]


async def test_bad_queries_are_refused() -> None:
    for params in ({"decision": "maybe"}, {"limit": "0"}, {"cursor": "nonsense"}):
        with pytest.raises(ValidationFailed) as caught:
            parse_audit_query(params)
        assert caught.value.errors[0].field == next(iter(params))
