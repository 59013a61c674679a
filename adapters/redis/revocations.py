"""Revoked token ids in Redis: one key per jti, expiring with the token it revokes."""

from __future__ import annotations

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
    """Redis first; with a ``fallback`` (MongoDB) every revocation is also written there, and a
    Redis outage reads the fallback instead, so an outage neither fails requests nor forgets a
    revocation."""

    def __init__(
        self, redis: Any, clock: Callable[[], datetime] = _utc_now, fallback: RevocationList | None = None
    ) -> None:
        self.redis = redis
        self.clock = clock
        self.fallback = fallback

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        if self.fallback is not None:
            await self.fallback.revoke(token_id, expires_at)
        seconds = math.ceil((expires_at - self.clock()).total_seconds())
        if seconds > 0:
            try:
                await self.redis.set(PREFIX + token_id, expires_at.isoformat(), ex=seconds)
            except (RedisError, OSError):
                if self.fallback is None:
                    raise

    async def is_revoked(self, token_id: str) -> bool:
        """Redis expiry bounds the memory; the clock decides, so all adapters agree to the second."""
        try:
            stored = await self.redis.get(PREFIX + token_id)
        except (RedisError, OSError):
            if self.fallback is None:
                raise
            return await self.fallback.is_revoked(token_id)
        if stored is None:
            return False
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        return self.clock() < datetime.fromisoformat(text)
