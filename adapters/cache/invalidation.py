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
process writes its invalidations there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pymongo.errors import OperationFailure

from adapters.cache.backend import CacheStore
from adapters.cache.cached_repository import CATALOG

logger = logging.getLogger(__name__)

#: Not a replica set, unknown command or unknown pipeline stage: this server has no change streams.
UNSUPPORTED_CODES = frozenset({40573, 115, 40324})
MAX_AGE = 0.5
AWAIT_MS = 250
RETRY_MIN, RETRY_MAX = 0.1, 5.0
START_WAIT = 5.0
STOP_WAIT = 5.0
_DOCUMENT_EVENTS = frozenset({"insert", "replace", "update", "delete"})


def change_tags(change: Mapping[str, Any]) -> list[str] | None:
    """The tags a change invalidates; None when it may have changed everything (a drop)."""
    if change.get("operationType") not in _DOCUMENT_EVENTS:
        return None
    product_id = (change.get("documentKey") or {}).get("_id")
    skus = (change.get("fullDocument") or {}).get("skus") or []
    return [f"product:{product_id}", CATALOG, *(f"sku:{sku}" for sku in skus if isinstance(sku, str))]


class ChangeFeedInvalidator:
    """A background task applying the change stream to one process's cache; stops on ``stop``."""

    def __init__(self, products: Any, store: CacheStore) -> None:
        self.products = products
        self.store = store
        self.watching = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    async def start(self) -> None:
        """Returns once the stream is open (or the first attempt failed): the cache is safe to use."""
        self.store.suspend()
        self._first_attempt = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="eyewear-cache-invalidation")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), START_WAIT)

    async def stop(self) -> None:
        """Cancels the task; the flag ends it too should the driver turn the cancellation into an error."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_WAIT)

    async def apply(self, change: Mapping[str, Any]) -> None:
        tags = change_tags(change)
        if tags is None:
            await self.store.clear()
        else:
            await self.store.invalidate(tags)

    async def _run(self) -> None:
        delay = RETRY_MIN
        while not self._stopping:
            try:
                stream = await self.products.watch(full_document="updateLookup", max_await_time_ms=AWAIT_MS)
            except OperationFailure as error:
                if error.code in UNSUPPORTED_CODES:
                    await self._without_change_streams(error)
                    return
                logger.warning("cache.change_stream.unavailable: %s", error)
            except Exception as error:  # the database is unreachable: retry, the cache stays bypassed
                if self._stopping:
                    return
                logger.warning("cache.change_stream.unavailable: %s: %s", type(error).__name__, error)
            else:
                await self._follow(stream)
                delay = RETRY_MIN
            self._first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _follow(self, stream: Any) -> None:
        try:
            await self.store.resume()
            self.watching = True
            self._first_attempt.set()
            while stream.alive and not self._stopping:
                change = await stream.try_next()  # one getMore each: the client's timeoutMS bounds each wait
                if change is not None:
                    await self.apply(change)
        except Exception as error:
            if not self._stopping:
                logger.warning("cache.change_stream.lost: %s: %s", type(error).__name__, error)
        finally:
            self.watching = False
            self.store.suspend()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.close(), 1.0)

    async def _without_change_streams(self, error: OperationFailure) -> None:
        logger.warning("cache.change_stream.unsupported (%s): cached entries live %.1fs at most", error, MAX_AGE)
        self.store.limit_age(MAX_AGE)
        await self.store.resume()
        self._first_attempt.set()
