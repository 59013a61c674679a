"""Following one collection's change stream in the background, for state a process keeps locally.

A follower owns the stream's life: it opens it, hands each change to its listener, reopens it
(with backoff) whenever it breaks, gives up for good on a server without change streams, and
stops on request. What the local state does about it is the listener's business, through four
hooks that encode the one rule every follower shares: local state is trusted only while the
stream is open, and whatever happened while it was not went unseen, so each (re)opening must
catch up (``opened``) before the state is trusted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from pymongo.errors import OperationFailure

logger = logging.getLogger(__name__)

#: Not a replica set, unknown command or unknown pipeline stage: this server has no change streams.
UNSUPPORTED_CODES = frozenset({40573, 115, 40324})
AWAIT_MS = 250
RETRY_MIN, RETRY_MAX = 0.1, 5.0
START_WAIT = 5.0
STOP_WAIT = 5.0


class ChangeListener(Protocol):
    def closed(self) -> None:
        """The stream is not open (before the first opening, after a break): stop trusting local state."""

    async def opened(self) -> None:
        """The stream has just been (re)opened: catch up with what went unseen, then trust again."""

    async def apply(self, change: Mapping[str, Any]) -> None:
        """One change, in commit order."""

    async def unsupported(self, error: OperationFailure) -> None:
        """The server has no change streams: the follower gives up for good."""


class ChangeFollower:
    """A background task feeding one collection's change stream to a listener; stops on ``stop``.

    ``watching`` is true from the end of ``listener.opened()`` until the stream is lost: the
    window in which the listener's state may be trusted.
    """

    def __init__(self, collection: Any, listener: ChangeListener, *, name: str, **watch_options: Any) -> None:
        self.collection = collection
        self.listener = listener
        self.name = name
        self.watch_options = {"max_await_time_ms": AWAIT_MS, **watch_options}
        self.watching = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    async def start(self) -> None:
        """Returns once the stream is open (or the first attempt failed): the listener's state is settled."""
        self.listener.closed()
        self._first_attempt = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"eyewear-{self.name}-change-stream")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), START_WAIT)

    async def stop(self) -> None:
        """Cancels the task; the flag ends it too should the driver turn the cancellation into an error."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_WAIT)

    async def _run(self) -> None:
        delay = RETRY_MIN
        while not self._stopping:
            try:
                stream = await self.collection.watch(**self.watch_options)
            except OperationFailure as error:
                if error.code in UNSUPPORTED_CODES:
                    await self.listener.unsupported(error)
                    self._first_attempt.set()
                    return
                logger.warning("%s.change_stream.unavailable: %s", self.name, error)
            except Exception as error:  # the database is unreachable: retry, local state stays untrusted
                if self._stopping:
                    return
                logger.warning("%s.change_stream.unavailable: %s: %s", self.name, type(error).__name__, error)
            else:
                await self._follow(stream)
                delay = RETRY_MIN
            self._first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _follow(self, stream: Any) -> None:
        try:
            await self.listener.opened()
            self.watching = True
            self._first_attempt.set()
            while stream.alive and not self._stopping:
                change = await stream.try_next()  # one getMore each: the client's timeoutMS bounds each wait
                if change is not None:
                    await self.listener.apply(change)
        except Exception as error:
            if not self._stopping:
                logger.warning("%s.change_stream.lost: %s: %s", self.name, type(error).__name__, error)
        finally:
            self.watching = False
            self.listener.closed()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.close(), 1.0)
