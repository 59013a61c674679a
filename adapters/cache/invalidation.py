"""Cross-process freshness for a private (in-memory) cache: the products collection's change stream.

Why a change stream rather than a polled change marker: it is pushed within milliseconds, it
sees every committed write whoever made it (``eyewear ingest``, a rollback, another ``serve``,
an operator's shell) without any writer's cooperation, and it costs nothing while nothing
changes. A change marker would have every write transaction update one shared document, so all
writers would conflict on it; polling ``updated_at`` would trust other processes' clocks and
miss transactions that commit late. SecantusDB (a single-node replica set) and any MongoDB
replica set support change streams; where the server does not (a standalone ``mongod``), cached
entries simply live at most ``MAX_AGE``: fewer hits, but fresh within the promised second.

While the stream is down the cache is bypassed; whenever it is (re)opened the cache is cleared,
since whatever happened in between went unseen. A shared Redis needs none of this: every
process writes its invalidations there. The stream itself (opening, retries, stopping) is run by
``adapters.mongo.change_follower``, shared with the revocation mirror.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pymongo.errors import OperationFailure

from adapters.cache.backend import CacheStore
from adapters.cache.cached_repository import CATALOG
from adapters.mongo.change_follower import ChangeFollower

logger = logging.getLogger(__name__)

MAX_AGE = 0.5
_DOCUMENT_EVENTS = frozenset({"insert", "replace", "update", "delete"})


def change_tags(change: Mapping[str, Any]) -> list[str] | None:
    """The tags a change invalidates; None when it may have changed everything (a drop)."""
    if change.get("operationType") not in _DOCUMENT_EVENTS:
        return None
    product_id = (change.get("documentKey") or {}).get("_id")
    skus = (change.get("fullDocument") or {}).get("skus") or []
    return [f"product:{product_id}", CATALOG, *(f"sku:{sku}" for sku in skus if isinstance(sku, str))]


class ChangeFeedInvalidator:
    """Applies the products change stream to one process's cache (a ``ChangeListener``)."""

    def __init__(self, products: Any, store: CacheStore) -> None:
        self.store = store
        self.follower = ChangeFollower(products, self, name="cache", full_document="updateLookup")

    @property
    def watching(self) -> bool:
        return self.follower.watching

    async def start(self) -> None:
        """Returns once the stream is open (or the first attempt failed): the cache is safe to use."""
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def closed(self) -> None:
        self.store.suspend()

    async def opened(self) -> None:
        await self.store.resume()

    async def apply(self, change: Mapping[str, Any]) -> None:
        tags = change_tags(change)
        if tags is None:
            await self.store.clear()
        else:
            await self.store.invalidate(tags)

    async def unsupported(self, error: OperationFailure) -> None:
        logger.warning("cache.change_stream.unsupported (%s): cached entries live %.1fs at most", error, MAX_AGE)
        self.store.limit_age(MAX_AGE)
        await self.store.resume()
