"""Brand spellings on MongoDB (``brands``: ``_id`` the brand's slug, ``name`` its first spelling).

A new brand is registered by an upsert that only sets the name on insert, so whichever writer
inserts first wins and every other one reads the winner back. A spelling never changes once
registered, so each process remembers what it read and asks again only for brands it has not seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo.documents import BrandDocument
from adapters.mongo.retries import DEFAULT_RETRY, RetryPolicy
from domain.ports import BrandNames
from domain.rbac import brand_key

#: Brands remembered per process (a catalog has hundreds, not millions).
MAX_REMEMBERED = 100_000
#: Upserts of one new brand before a lost race is an error (each lost race means another writer won).
REGISTER_ATTEMPTS = 5


class BrandNotStored(RuntimeError):
    """Every upsert of a new brand lost its race, yet no winner's spelling could be read."""


class MongoBrandNames(BrandNames):
    def __init__(self, database: AsyncDatabase[Any], retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.collection = database[BrandDocument.Settings.name]
        self.retry = retry
        self._known: dict[str, str] = {}

    async def canonical(self, spellings: Collection[str], *, register: bool = True) -> dict[str, str]:
        names: dict[str, str] = {}
        for spelling in spellings:
            key = brand_key(spelling)
            name = self._known.get(key)
            if name is None:
                name = await self.retry.call(self._register if register else self._look_up, key, spelling)
                if name is None:  # not registered, and not to be: as it is
                    names[spelling] = spelling
                    continue
                if len(self._known) < MAX_REMEMBERED:
                    self._known[key] = name
            names[spelling] = name
        return names

    async def _look_up(self, key: str, spelling: str) -> str | None:
        stored = await self.collection.find_one({"_id": key})
        return str(stored["name"]) if stored is not None else None

    async def _register(self, key: str, spelling: str) -> str:
        """Upsert, then read what won. A writer that lost the race to insert gets a DuplicateKeyError
        from MongoDB, or from SecantusDB an answer with no document at all, and the winner's insert
        may not be visible yet to a read right after (both seen in
        tests/contract/test_brand_names.py): so it reads, and upserts again while it finds nothing."""
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                stored = await self.collection.find_one_and_update(
                    {"_id": key},
                    {"$setOnInsert": {"name": spelling}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # two upserts raced to insert: the other one won
                stored = None
            if stored is None:
                stored = await self.collection.find_one({"_id": key})
            if stored is not None:
                return str(stored["name"])
            await asyncio.sleep(0.01 * (attempt + 1))
        raise BrandNotStored(f"brand {key!r}: no spelling stored after {REGISTER_ATTEMPTS} upserts")

    def forget(self) -> None:
        """Drops what this process remembers (for a database emptied behind its back: tests)."""
        self._known.clear()
