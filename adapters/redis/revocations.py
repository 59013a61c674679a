"""Revoked token ids in Redis: one key per jti, expiring with the token it revokes.

Redis is a shared, fast copy of the revocations, not their record: it can lose its data (a
restart without persistence, an eviction, a failover to a replica that lagged). With a
``fallback`` (MongoDB, where every revocation is written first), a Redis *miss* is therefore
not an answer: it is asked of the fallback, which the container answers from this process's
change-stream mirror of the revocations collection (a memory lookup while the stream is open,
a MongoDB read otherwise). A revocation found there but missing from Redis is written back, so
Redis heals itself. Any failure to answer propagates: the check fails closed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from domain.audit import RevocationList

PREFIX = "eyewear:revoked:"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RedisRevocationList(RevocationList):
    """Redis first; with a ``fallback`` (MongoDB) every revocation is also written there, and both a
    Redis outage and a Redis miss read the fallback, so neither an outage nor a Redis that lost its
    data forgets a revocation."""

    def __init__(
        self, redis: Any, clock: Callable[[], datetime] = _utc_now, fallback: RevocationList | None = None
    ) -> None:
        self.redis = redis
        self.clock = clock
        self.fallback = fallback

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        if self.fallback is not None:
            await self.fallback.revoke(token_id, expires_at)
        try:
            await self._store(token_id, expires_at)
        except (RedisError, OSError):
            if self.fallback is None:
                raise

    async def _store(self, token_id: str, expires_at: datetime) -> None:
        seconds = math.ceil((expires_at - self.clock()).total_seconds())
        if seconds > 0:
            await self.redis.set(PREFIX + token_id, expires_at.isoformat(), ex=seconds)

    async def revoked_until(self, token_id: str) -> datetime | None:
        """Redis expiry bounds the memory; the clock decides, so all adapters agree to the second."""
        try:
            stored = await self.redis.get(PREFIX + token_id)
        except (RedisError, OSError):
            if self.fallback is None:
                raise
            return await self.fallback.revoked_until(token_id)
        if stored is not None:
            expires_at = datetime.fromisoformat(stored.decode() if isinstance(stored, bytes) else str(stored))
            return expires_at if self.clock() < expires_at else None
        if self.fallback is None:
            return None
        expires_at = await self.fallback.revoked_until(token_id)
        if expires_at is not None:  # Redis lost it (a restart, an eviction): heal it
            with contextlib.suppress(RedisError, OSError):  # the answer stands; the next check heals
                await self._store(token_id, expires_at)
        return expires_at
