"""The audit log's database sink: each decision waits for the insert that carries it (group commit).

Why: CONTRACT 4.2 wants every decision written before its answer, and a replica whose disk is
ephemeral cannot keep the local journal of ADR 0009, which is what makes an append cost
microseconds there. Here "written" means acknowledged by MongoDB. One ``insert_one`` per decision
was the slowest layer of every read (ADR 0009), so the inserts are shared: one is in flight at a
time, and the next carries every record that arrived meanwhile (at most ``BATCH``). An idle
process pays one round trip per decision, a busy one about one round trip per burst whatever the
number of callers (ADR 0019).

Every caller waits for the outcome of the insert that carries its record, and nothing else:
that insert's error (after the transient ones were retried) is raised to each of its waiters, so
the request fails closed as a synchronous insert did; a record the server refused alone (a write
error of its own in the unordered insert) fails its waiter only, since the others were stored.
A waiter that is cancelled leaves its record in the batch: the records of the others, and its
own, are inserted all the same. ``close`` inserts what is queued before it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from pymongo.errors import BulkWriteError

from adapters.mongo.audit_log import DUPLICATE_KEY
from adapters.mongo.retries import RetryPolicy
from domain.audit import AuditLog, AuditQuery, AuditRecord
from domain.search import Page

logger = logging.getLogger(__name__)

#: Records per insert, as the journal's ``SHIP_LINES`` and for its reason: a backlog goes in
#: bounded inserts, each well inside the client's operation timeout, never one that times out
#: and is retried whole.
BATCH = 500
#: The caller is waiting: a blip (a dropped connection, a failover) is ridden out, an outage fails
#: the request within seconds (503 from the HTTP layer) rather than holding it.
AUDIT_RETRY = RetryPolicy(attempts=4, timeout=5.0, wait_initial=0.05, wait_max=1.0, wait_jitter=0.05)
#: How long ``close`` lets the queued records go in (an insert and its retries) before giving up.
STOP_WAIT = 10.0


@dataclass(eq=False, slots=True)
class _Waiter:
    records: tuple[AuditRecord, ...]
    done: asyncio.Future[None]


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled: the record went in (or not) all the same
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _consume(future: asyncio.Future[None]) -> None:
    """Marks the outcome seen: a caller that stopped waiting must not leave an unretrieved error."""
    if not future.cancelled():
        future.exception()


class GroupCommitAuditLog(AuditLog):
    """Wraps the durable log; ``start`` before use, ``close`` at exit (inserts what is queued)."""

    def __init__(self, durable: AuditLog, *, batch: int = BATCH, retry: RetryPolicy = AUDIT_RETRY) -> None:
        self.durable = durable
        self.batch = batch
        self.retry = retry
        #: Inserts made, and the records they carried (whatever their outcome).
        self.inserts = 0
        self.carried = 0
        self._pending: deque[_Waiter] = deque()
        self._in_flight: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Starts the committer; once (a second one would break "one insert in flight")."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="eyewear-audit-group-commit")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closing

    @property
    def queued(self) -> int:
        """Records waiting for an insert (not those of the insert in flight)."""
        return sum(len(waiter.records) for waiter in self._pending)

    async def append(self, record: AuditRecord) -> None:
        await self.append_many((record,))

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        """Returns once an acknowledged insert carries every record; raises what that insert raised."""
        if not records:
            return
        if not self.running:
            raise RuntimeError("the audit sink is not running")
        loop = asyncio.get_running_loop()
        futures = []
        for start in range(0, len(records), self.batch):
            future: asyncio.Future[None] = loop.create_future()
            future.add_done_callback(_consume)
            self._pending.append(_Waiter(tuple(records[start : start + self.batch]), future))
            futures.append(future)
        self._wake.set()
        for future in futures:
            await future

    async def query(self, query: AuditQuery) -> Page[AuditRecord]:
        """Straight from the durable log: every append that returned is there already."""
        return await self.durable.query(query)

    async def close(self) -> None:
        """Inserts what is queued, then stops; what could not go in fails its callers (fail closed)."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=STOP_WAIT)
        while not done:  # repeated: PyMongo on 3.11 can lose a cancellation (docs/performance.md)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=0.05)

    def _take(self) -> list[_Waiter]:
        """The queued waiters, oldest first, up to ``batch`` records (each waiter holds ``batch`` at most)."""
        taken: list[_Waiter] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0].records) <= self.batch):
            waiter = self._pending.popleft()
            taken.append(waiter)
            size += len(waiter.records)
        return taken

    async def _run(self) -> None:
        """One insert at a time; whatever arrived during one goes in the next, without delay."""
        try:
            while True:
                if not self._pending:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._in_flight = self._take()
                await self._commit(self._in_flight)
                self._in_flight = []
        finally:  # stopped (cancelled by ``close``, or a bug): nobody may wait for ever
            stopped = RuntimeError("the audit sink stopped before the record was stored")
            for waiter in (*self._in_flight, *self._pending):
                _settle(waiter.done, stopped)
            self._in_flight = []
            self._pending.clear()

    async def _commit(self, waiters: list[_Waiter]) -> None:
        records = [record for waiter in waiters for record in waiter.records]
        self.inserts += 1
        self.carried += len(records)
        try:
            await self.retry.call(self.durable.append_many, records)
        except BulkWriteError as error:
            self._settle_write_errors(waiters, error)
        except Exception as error:
            logger.warning(
                "audit_sink.insert_failed records=%d waiters=%d: %s: %s",
                len(records),
                len(waiters),
                type(error).__name__,
                error,
            )
            for waiter in waiters:
                _settle(waiter.done, error)
        else:
            for waiter in waiters:
                _settle(waiter.done, None)

    @staticmethod
    def _settle_write_errors(waiters: list[_Waiter], error: BulkWriteError) -> None:
        """The unordered insert stored every record but those the server refused one by one: only
        their waiters fail. A write concern error leaves every record in doubt: all fail. The
        indexes are those of the records in the order given (``MongoAuditLog`` inserts them so)."""
        details = error.details
        refused = {e.get("index") for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY}
        doubtful = bool(details.get("writeConcernErrors")) or not refused or None in refused
        logger.warning(
            "audit_sink.records_refused refused=%d all=%s: %s", len(refused), doubtful, str(error).splitlines()[0]
        )
        offset = 0
        for waiter in waiters:
            mine = any(offset + i in refused for i in range(len(waiter.records)))
            _settle(waiter.done, error if doubtful or mine else None)
            offset += len(waiter.records)
