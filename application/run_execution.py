"""Executing a queued run wherever it is delivered (CONTRACT.md section 6).

A run is accepted by one process (its feed stored in a ``FeedStore``, its record queued) and
executed by whichever executor the ``RunQueue`` delivers it to: the accepting process itself when
there is no job engine, an ``eyewear worker`` otherwise. The executor acts for the caller who asked
for the run, as authorized then (roles, brands and request id are kept with the run), goes on from
the run's checkpoints when it takes a run over, and, stopped before the end, hands the run back to
the queue (when the queue delivers it again) or gives it up as interrupted.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator

from application.authorization import Caller
from application.ingestion import FeedSource, IngestFeed
from application.run_leases import IngestionLog, NoIngestionLog
from application.run_queue import Delivery
from domain.ingestion import IngestionRun, RunStatus
from domain.ports import IngestionRuns
from domain.rbac import Principal, Role


class FeedMissing(Exception):
    """The run's feed is no longer stored (expired, or removed by hand)."""


class FeedStore(abc.ABC):
    """Feed bodies between their acceptance and the end of their run."""

    @abc.abstractmethod
    async def put(self, run_id: str, suffix: str, chunks: AsyncIterator[bytes]) -> None:
        """Stores the body of ``run_id``'s feed as it streams in (``suffix``: ``.ndjson``, ``.csv.gz``, …)."""

    @abc.abstractmethod
    def opened(self, run: IngestionRun) -> contextlib.AbstractAsyncContextManager[FeedSource]:
        """The run's feed, readable as a stream for as long as the block lasts; ``FeedMissing``."""

    @abc.abstractmethod
    async def discard(self, run_id: str) -> None:
        """The feed is no longer needed (its run succeeded, was rejected, or was rolled back)."""

    @abc.abstractmethod
    async def keep(self, run_id: str) -> None:
        """The run failed: its feed is kept a while (to look into, or to take the run again), then expires."""


def run_caller(run: IngestionRun) -> Caller:
    """The caller who asked for the run, as authorized when it was accepted."""
    names = {role.value for role in Role}
    roles = frozenset(Role(name) for name in run.actor_roles if name in names)
    principal = Principal(subject=run.actor, roles=roles, brands=frozenset(run.actor_brands))
    return Caller(principal, run.correlation_id or run.run_id)


class ExecuteQueuedRun:
    """What an executor does with a delivered run."""

    def __init__(
        self,
        ingest: IngestFeed,
        runs: IngestionRuns,
        feeds: FeedStore,
        *,
        hand_back: bool,
        log: IngestionLog | None = None,
    ) -> None:
        """``hand_back``: the queue delivers a stopped run again, so one stopped here goes back to it."""
        self.ingest = ingest
        self.runs = runs
        self.feeds = feeds
        self.hand_back = hand_back
        self.log: IngestionLog = log or NoIngestionLog()

    async def __call__(self, delivery: Delivery) -> IngestionRun | None:
        run_id = delivery.run_id
        run = await self.runs.get(run_id)
        if run is None or run.status.finished:
            return run  # nothing to do: delivered twice, or cancelled meanwhile
        try:
            async with self.feeds.opened(run) as source:
                done = await self.ingest.execute(run, source, run_caller(run))
        except asyncio.CancelledError:
            delivery.stopping.set()
            await self._stopped(run_id)
            raise
        except FeedMissing as missing:
            return await self.ingest.fail_unstarted(run, f"the feed is no longer stored: {missing}")
        if done.status is RunStatus.FAILED:
            await self.feeds.keep(run_id)
        elif done.status.finished:
            await self.feeds.discard(run_id)
        return done

    async def _stopped(self, run_id: str) -> None:
        if self.hand_back:
            await self.ingest.hand_back(run_id)
        else:
            await self.ingest.abandon(run_id)
