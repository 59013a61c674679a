"""Revoked token ids in Redis: one key per jti, expiring with the token it revokes."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from domain.audit import RevocationList

PREFIX = "eyewear:revoked:"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RedisRevocationList(RevocationList):
    def __init__(self, redis: Any, clock: Callable[[], datetime] = _utc_now) -> None:
        self.redis = redis
        self.clock = clock

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        seconds = math.ceil((expires_at - self.clock()).total_seconds())
        if seconds > 0:
            await self.redis.set(PREFIX + token_id, expires_at.isoformat(), ex=seconds)

    async def is_revoked(self, token_id: str) -> bool:
        """Redis expiry bounds the memory; the clock decides, so all adapters agree to the second."""
        stored = await self.redis.get(PREFIX + token_id)
        if stored is None:
            return False
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        return self.clock() < datetime.fromisoformat(text)
