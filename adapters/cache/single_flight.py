"""One load per key at a time in this process, however many callers miss it together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    """Concurrent misses of one key under one token share one load in this process."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], asyncio.Future[Any]] = {}

    async def run(self, key: tuple[str, str], make: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._tasks[key] = task
            task.add_done_callback(partial(self._done, key))
        return await asyncio.shield(task)  # a cancelled caller does not cancel the others' load

    def _done(self, key: tuple[str, str], task: asyncio.Future[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved here; every waiter re-raises it
