"""A Redis outage neither fails authenticated requests nor forgets a revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.revocations import MongoRevocationList
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from adapters.redis.revocations import RedisRevocationList
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
