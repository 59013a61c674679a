"""Strike counting in Redis, so every service process sees the same offenders."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from domain.abuse import DEFAULT_ABUSE_POLICY, AbusePolicy, AbuseTracker

PREFIX = "eyewear:abuse:"


class RedisAbuseTracker(AbuseTracker):
    """A fixed window per key (INCR + EXPIRE); a block is a key that expires when it ends."""

    def __init__(self, redis: Any, policy: AbusePolicy = DEFAULT_ABUSE_POLICY) -> None:
        self.redis = redis
        self.policy = policy

    async def strike(self, key: str, now: datetime) -> datetime | None:
        """A Redis outage drops the strike rather than failing the request that earned it."""
        try:
            return await self._strike(key, now)
        except (RedisError, OSError):
            return None

    async def _strike(self, key: str, now: datetime) -> datetime | None:
        counter = f"{PREFIX}strikes:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, math.ceil(self.policy.window.total_seconds()), nx=True)
            count, _ = await pipe.execute()
        if int(count) < self.policy.strikes:
            return None
        until = now + self.policy.block
        await self.redis.set(
            f"{PREFIX}blocked:{key}", until.isoformat(), ex=math.ceil(self.policy.block.total_seconds())
        )
        await self.redis.delete(counter)
        return until

    async def blocked_until(self, key: str, now: datetime) -> datetime | None:
        try:
            stored = await self.redis.get(f"{PREFIX}blocked:{key}")
        except (RedisError, OSError):
            return None
        if stored is None:
            return None
        until = datetime.fromisoformat(stored.decode() if isinstance(stored, bytes) else str(stored))
        return until if until > now else None
