"""Revoked token ids in MongoDB, removed by a TTL index once the token would have expired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import RevokedTokenDocument
from domain.audit import RevocationList


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MongoRevocationList(RevocationList):
    def __init__(self, database: AsyncDatabase[Any], clock: Callable[[], datetime] = _utc_now) -> None:
        self.collection = database[RevokedTokenDocument.Settings.name]
        self.clock = clock

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        await self.collection.update_one({"_id": token_id}, {"$max": {"expires_at": expires_at}}, upsert=True)

    async def is_revoked(self, token_id: str) -> bool:
        """The TTL monitor runs about once a minute; the clock decides in between."""
        stored = await self.collection.find_one({"_id": token_id})
        return stored is not None and self.clock() < stored["expires_at"]
