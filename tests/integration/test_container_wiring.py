"""The composition root picks shared state by configuration: Redis when given, else MongoDB; the
audit sink by EYEWEAR_AUDIT_SINK."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from adapters.files.audit_journal import JournaledAuditLog, encode_record
from adapters.memory.abuse import MemoryAbuseTracker
from adapters.mongo.group_commit_audit import GroupCommitAuditLog
from adapters.mongo.revocations import MongoRevocationList
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.revocations import RedisRevocationList
from application.authorization import system_caller
from domain.rbac import Permission
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings
from tests.contract.test_audit_log import record


@pytest.mark.parametrize("with_redis", [False, True])
async def test_revocations_strikes_and_the_mirror_follow_the_configuration(
    mongo_url: str, redis_url: str, tmp_path: Path, with_redis: bool
) -> None:
    settings = Settings(
        mongodb_url=mongo_url,
        mongodb_db=f"wiring_{uuid.uuid4().hex[:8]}",
        redis_url=redis_url if with_redis else None,
        data_dir=tmp_path,
    )
    container = Container(settings=settings)
    await container.init_resources()
    try:
        revocations = await resolve(container.revocations)
        abuse = await resolve(container.abuse)
        mirror = await resolve(container.revocation_mirror)
        expected = (RedisRevocationList, RedisAbuseTracker) if with_redis else (MongoRevocationList, MemoryAbuseTracker)
        assert (type(revocations), type(abuse)) == expected
        # MongoDB's list, answered from this process's mirror while its stream is open; with Redis
        # it is what a Redis miss asks (Redis may have lost its data).
        durable = revocations.fallback if with_redis else revocations
        assert isinstance(durable, MongoRevocationList)
        assert durable.mirror is mirror and mirror.live
        issued = (await resolve(container.token_issuer)).issue("w", ["viewer"], ttl_seconds=60)
        verifier = await resolve(container.token_verifier)
        principal = await verifier.verify(issued.token)
        await verifier.revoke(principal)
        assert await revocations.is_revoked(issued.jti)
        database = await resolve(container.database)
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()
    assert not mirror.live  # stopped with the container


@pytest.mark.parametrize("sink", ["journal", "database"])
async def test_the_audit_sink_follows_the_setting(mongo_url: str, tmp_path: Path, sink: str) -> None:
    """EYEWEAR_AUDIT_SINK (CONTRACT.md section 6): the database sink has stored a decision when the
    decision returns, and keeps nothing on the local disk; the journal writes its segment there."""
    settings = Settings(
        mongodb_url=mongo_url, mongodb_db=f"wiring_{uuid.uuid4().hex[:8]}", data_dir=tmp_path, audit_sink=sink
    )
    container = Container(settings=settings)
    await container.init_resources()
    try:
        audit = await resolve(container.audit_log)
        assert type(audit) is {"journal": JournaledAuditLog, "database": GroupCommitAuditLog}[sink]
        authorizer = await resolve(container.authorizer)
        await authorizer.require(system_caller("wiring"), Permission.PRODUCT_READ, "product:p1")
        database = await resolve(container.database)
        if sink == "database":
            assert await database["audit_log"].count_documents({"actor": "wiring"}) == 1
        assert (tmp_path / "audit-journal").is_dir() == (sink == "journal")
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()
    if isinstance(audit, GroupCommitAuditLog):
        assert not audit.running  # stopped with the container


async def test_the_database_sink_ships_what_a_journal_left_in_the_data_dir(mongo_url: str, tmp_path: Path) -> None:
    """Switching a replica from the journal to the database sink strands no record of a dead process."""
    journal = tmp_path / "audit-journal"
    journal.mkdir()
    (journal / "999999-dead.jsonl").write_bytes(encode_record(record(1)) + encode_record(record(2)))
    settings = Settings(
        mongodb_url=mongo_url, mongodb_db=f"wiring_{uuid.uuid4().hex[:8]}", data_dir=tmp_path, audit_sink="database"
    )
    container = Container(settings=settings)
    await container.init_resources()
    try:
        database = await resolve(container.database)
        assert sorted([doc["_id"] async for doc in database["audit_log"].find({}, {"_id": 1})]) == ["r0001", "r0002"]
        assert list(journal.iterdir()) == []
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()
