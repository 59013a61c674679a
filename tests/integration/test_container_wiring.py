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
async def test_revocations_and_strikes_follow_the_configuration(
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
        expected = (RedisRevocationList, RedisAbuseTracker) if with_redis else (MongoRevocationList, MemoryAbuseTracker)
        assert (type(revocations), type(abuse)) == expected
        issued = (await resolve(container.token_issuer)).issue("w", ["viewer"], ttl_seconds=60)
        verifier = await resolve(container.token_verifier)
        principal = await verifier.verify(issued.token)
        await verifier.revoke(principal)
        assert await revocations.is_revoked(issued.jti)
        database = await resolve(container.database)
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()
