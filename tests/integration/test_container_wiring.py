"""The composition root picks shared state by configuration: Redis when given, else MongoDB."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from adapters.memory.abuse import MemoryAbuseTracker
from adapters.mongo.revocations import MongoRevocationList
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.revocations import RedisRevocationList
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings


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
