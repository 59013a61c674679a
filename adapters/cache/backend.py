"""The cashews cache behind the catalog, and the rules that keep a failing cache harmless.

``mem://`` (one process) by default, Redis when ``EYEWEAR_REDIS_URL`` is set. Redis is set up with
``suppress=False`` on purpose: cashews' default swallows errors and answers "miss", which would
hide an outage from the metrics and silently drop invalidations. Here every error is counted
(``eyewear_cache_errors_total``), opens a one-second circuit (so an outage costs one failed round
trip per second, not one per read) and turns into "bypass the cache": a cache never fails a read.

Invalidations (token deletions) that could not be made are kept and made before this process uses
the cache again, so entries that survived an outage (a network partition, say) are never served.
"""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from typing import Any

from cashews import Cache
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters.cache.codec import FORMAT
from application.metrics import CacheMetrics

logger = logging.getLogger(__name__)

PREFIX = f"eyewear:cache:{FORMAT}:"
MEMORY_URL = "mem://?size=50000&check_interval=0"
TOKEN_TTL = 24 * 3600.0
RETRY_AFTER = 1.0
MAX_PENDING = 10_000
_REDIS_OPTIONS: dict[str, Any] = {
    "suppress": False,
    "pickle_type": "json",  # whatever a foreign writer left in Redis, reading it never unpickles
    "retry": Retry(NoBackoff(), 1),  # once, at once: a pooled connection may predate a Redis restart
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "wait_for_connection_timeout": 1.0,
    "max_connections": 64,
    "client_name": "eyewear-cache",
}


#: What a failed cache command answers; the caller then bypasses the cache.
FAILED: Any = object()


class CacheUnavailable(RuntimeError):
    """The readiness probe's answer when the cache is bypassed."""


def new_token() -> str:
    return uuid.uuid4().hex


def token_key(tag: str) -> str:
    return "tag:" + tag


class CacheStore:
    """One cashews ``Cache`` with error accounting; ``None`` answers mean "bypass the cache"."""

    def __init__(self, cache: Cache, metrics: CacheMetrics, *, shared: bool) -> None:
        self.cache = cache
        self.metrics = metrics
        #: Shared with other processes (Redis) rather than private to this one (memory).
        self.shared = shared
        #: Set when no change feed keeps a private cache fresh: entries then live this long at most.
        self.max_age: float | None = None
        self._suspended = False
        self._open_until = 0.0
        self._pending: set[str] = set()
        self._flush_all = False

    @classmethod
    def open(cls, redis_url: str | None, metrics: CacheMetrics) -> CacheStore:
        cache = Cache(name="eyewear-catalog")
        if redis_url:
            cache.setup(redis_url, **_REDIS_OPTIONS)
        else:
            cache.setup(MEMORY_URL)
        return cls(cache, metrics, shared=bool(redis_url))

    async def init(self) -> None:
        await self.cache.init()  # connects lazily: a Redis that is down does not stop start-up

    async def close(self) -> None:
        try:
            with warnings.catch_warnings():  # cashews calls redis-py's deprecated close()
                warnings.simplefilter("ignore", DeprecationWarning)
                await self.cache.close()
        except Exception:  # closing a dead connection is no news
            logger.debug("cache.close.failed", exc_info=True)

    # The private cache's freshness, driven by the change-feed watcher.
    def suspend(self) -> None:
        """Bypass the cache until ``resume``: writes of other processes may be going unseen."""
        self._suspended = True

    async def resume(self) -> None:
        """Forget everything cached before (it may be stale), then use the cache again."""
        if not self.shared:
            await self.cache.clear()
        self._suspended = False

    def limit_age(self, seconds: float) -> None:
        self.max_age = seconds

    async def usable(self) -> bool:
        if self._suspended or time.monotonic() < self._open_until:
            return False
        if self._pending or self._flush_all:
            return await self._flush_pending()
        return True

    # Reads and writes; each answers None (or does nothing) when the cache failed.
    async def read(self, key: str, tag: str) -> tuple[Any, str | None] | None:
        """The entry under ``key`` and the current token of ``tag``, in one round trip."""
        values = await self._call(self.cache.get_many, PREFIX + key, PREFIX + token_key(tag))
        if values is FAILED:
            return None
        entry, token = values
        return entry, token if isinstance(token, str) else None

    async def entry(self, key: str) -> Any:
        """The entry under ``key``; None when there is none or the cache failed."""
        value = await self._call(self.cache.get, PREFIX + key)
        return None if value is FAILED else value

    async def mint(self, tag: str) -> str | None:
        """The tag's token, created when it has none (first use, eviction, a restarted Redis)."""
        key = PREFIX + token_key(tag)
        for _ in range(2):  # an expired token may still block the first NX set
            if await self._call(self.cache.set, key, new_token(), expire=TOKEN_TTL, exist=False) is FAILED:
                return None
            token = await self._call(self.cache.get, key)
            if isinstance(token, str):
                return token
        return None

    async def write(self, key: str, entry: dict[str, Any], ttl: float) -> None:
        expire = min(ttl, self.max_age) if self.max_age is not None else ttl
        await self._call(self.cache.set, PREFIX + key, entry, expire=expire)

    async def invalidate(self, tags: list[str]) -> None:
        """Drops the tokens of ``tags``: every entry stored under an old token stops matching.

        Deleting does what writing new tokens did (ADR 0007): the next read finds no token and
        ``mint``s a random one, which no entry stored before can carry, and no reader can bring
        an old token back (``mint`` only ever sets a new one). It writes nothing, so a process that
        writes much and reads little (``eyewear ingest``) does not fill its cache with tokens.
        """
        keys = {PREFIX + token_key(tag) for tag in tags}
        if time.monotonic() < self._open_until or not await self._drop_tokens(keys):
            self._remember(keys)

    async def clear(self) -> None:
        """Forget everything cached by this store (a private cache only: Redis is shared)."""
        if not self.shared:
            await self.cache.clear()

    async def lock(self, key: str, ttl: float) -> str | None:
        """The holder id when this caller got the lock; None when another holds it.

        An empty id means the cache failed: go ahead without stampede protection.
        """
        holder = new_token()
        acquired = await self._call(self.cache.set_lock, PREFIX + key, holder, expire=ttl)
        if acquired is FAILED:
            return ""
        return holder if acquired else None

    async def unlock(self, key: str, holder: str) -> None:
        if holder:
            await self._call(self.cache.unlock, PREFIX + key, holder)

    async def ping(self) -> None:
        """Raises unless the cache answers now and is in use (readiness: ``cache: error``)."""
        if self._suspended:
            raise CacheUnavailable("the cache is bypassed until the change feed is back")
        await self.cache.ping()

    # Failure handling.
    async def _call(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await command(*args, **kwargs)
        except Exception as error:  # any cache failure is a bypass, never the caller's error
            self._failed(error)
            return FAILED

    def _failed(self, error: Exception) -> None:
        self.metrics.cache_error()
        if time.monotonic() >= self._open_until:
            logger.warning("cache.bypassed for %.1fs: %s: %s", RETRY_AFTER, type(error).__name__, error)
        self._open_until = time.monotonic() + RETRY_AFTER

    async def _drop_tokens(self, keys: set[str]) -> bool:
        return await self._call(self.cache.delete_many, *keys) is not FAILED

    def _remember(self, keys: set[str]) -> None:
        if self._flush_all or len(self._pending) + len(keys) > MAX_PENDING:
            self._flush_all, self._pending = True, set()
        else:
            self._pending |= keys

    async def _flush_pending(self) -> bool:
        if self._flush_all:
            if await self._call(self.cache.delete_match, PREFIX + "*") is FAILED:
                return False
            self._flush_all = False
            return True
        keys = set(self._pending)
        if not await self._drop_tokens(keys):
            return False
        self._pending -= keys
        return True
