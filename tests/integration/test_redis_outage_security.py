"""A Redis outage neither fails authenticated requests nor forgets a revocation; nor does a Redis
that lost its data (a restart without persistence)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis as SyncRedis

from adapters.auth.access_tokens import InvalidToken
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.revocations import MongoRevocationList
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from adapters.redis.revocations import PREFIX, RedisRevocationList
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings
from tests.support.servers import RedisProcess, redis_process


async def test_revocations_fall_back_to_mongodb_and_strikes_are_dropped(mongo_catalog: MongoCatalog) -> None:
    with redis_process() as redis:
        await _exercise(redis, mongo_catalog)


async def _exercise(redis: RedisProcess, mongo_catalog: MongoCatalog) -> None:
    client = create_redis(redis.url)
    try:
        revocations = RedisRevocationList(client, fallback=MongoRevocationList(mongo_catalog.database))
        abuse = RedisAbuseTracker(client)
        later = datetime.now(UTC) + timedelta(minutes=5)
        await revocations.revoke("before-outage", later)
        redis.stop()
        assert await revocations.is_revoked("before-outage")
        assert not await revocations.is_revoked("never-revoked")
        await revocations.revoke("during-outage", later)
        assert await revocations.is_revoked("during-outage")
        now = datetime.now(UTC)
        assert await abuse.strike("sub:x", now) is None
        assert await abuse.blocked_until("sub:x", now) is None
    finally:
        await client.aclose()


async def test_a_revocation_outlives_a_redis_restart_that_lost_every_key(mongo_url: str, tmp_path: Path) -> None:
    """The container as served: revoke through the verifier, restart Redis (no persistence, so every
    key is gone), and the token is still refused; the check wrote the revocation back to Redis."""
    with redis_process() as redis:
        settings = Settings(
            mongodb_url=mongo_url, mongodb_db=f"revoked_{uuid.uuid4().hex[:8]}", redis_url=redis.url, data_dir=tmp_path
        )
        container = Container(settings=settings)
        await container.init_resources()
        try:
            issued = (await resolve(container.token_issuer)).issue("r", ["viewer"], ttl_seconds=600)
            kept = (await resolve(container.token_issuer)).issue("k", ["viewer"], ttl_seconds=600)
            verifier = await resolve(container.token_verifier)
            await verifier.revoke(await verifier.verify(issued.token))
            key = PREFIX + issued.jti
            inspect = SyncRedis.from_url(redis.url)  # the test's own view of the server, fresh connections
            assert inspect.exists(key)
            redis.stop()
            redis.start()
            assert not inspect.exists(key), "the restart kept the key: nothing was lost"
            for _ in range(2):  # the first check may meet the connection the restart broke: MongoDB answers
                with pytest.raises(InvalidToken) as refused:
                    await verifier.verify(issued.token)
                assert refused.value.reason == "revoked"
            assert inspect.exists(key), "Redis was not healed from MongoDB"
            assert (await verifier.verify(kept.token)).subject == "k"  # and a live token still passes
            database = await resolve(container.database)
            await database.client.drop_database(database.name)
        finally:
            await container.shutdown_resources()
