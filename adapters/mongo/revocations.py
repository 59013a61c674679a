"""Revoked token ids in MongoDB, removed by a TTL index once the token would have expired.

With a ``RevocationMirror`` (the container gives one when there is no Redis), checks are answered
from this process's memory while the mirror's change stream is open, and read MongoDB otherwise:
a mirror that may be stale never answers "not revoked" (ADR 0010).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import RevokedTokenDocument
from adapters.mongo.revocation_mirror import RevocationMirror
from domain.audit import RevocationList


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MongoRevocationList(RevocationList):
    def __init__(
        self,
        database: AsyncDatabase[Any],
        clock: Callable[[], datetime] = _utc_now,
        mirror: RevocationMirror | None = None,
    ) -> None:
        self.collection = database[RevokedTokenDocument.Settings.name]
        self.clock = clock
        self.mirror = mirror

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        """MongoDB first (durable, seen by every process), then this process's mirror at once."""
        await self.collection.update_one({"_id": token_id}, {"$max": {"expires_at": expires_at}}, upsert=True)
        if self.mirror is not None:
            await self.mirror.remember(token_id, expires_at)

    async def revoked_until(self, token_id: str) -> datetime | None:
        """The TTL monitor runs about once a minute; the clock decides in between."""
        if self.mirror is not None and self.mirror.live:
            return await self.mirror.revoked_until(token_id)
        stored = await self.collection.find_one({"_id": token_id})
        if stored is None:
            return None
        expires_at: datetime = stored["expires_at"]  # aware: the client is tz_aware
        return expires_at if self.clock() < expires_at else None
