"""The audit log's write-ahead journal: a decision is on disk before its answer, in MongoDB soon after.

Why: every authorization decision must be written before the response is sent (CONTRACT 4.2),
and a synchronous ``insert_one`` per decision was the slowest layer of every read (ADR 0009:
2.3 ms of a 4.1 ms uncached read by SKU, 7.4 ms of a 7.5 ms cached one). Appending one line to
a file this process holds open costs microseconds and survives a crash of this process, as a
record acknowledged by MongoDB with its default write concern survives one of ``mongod``. A
background task ships the lines to the durable log in batches (one ``insert_many``) within
``LINGER`` seconds; reads of the log ship first, so this process reads its own decisions. When
the durable log stores records slower than they come, appends wait for the shipping to catch up
(``BACKLOG_RECORDS``), so every process sees a decision within about a second whatever the load.

Each process appends to a segment of its own, ``<pid>-<random>.jsonl`` in the journal
directory, and holds an exclusive ``flock`` on it for its lifetime. A segment whose lock can be
taken belongs to no live process (killed before it shipped everything): any process ships it and
removes it, at start and every ``SWEEP_SECONDS``. Shipping is idempotent by record id, so a
segment shipped twice (a crash between the insert and the truncation) leaves each record once.
While the durable log cannot be reached, records stay in the segment (flushed to the disk) and
are shipped when it comes back: nothing is lost, and answers go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.audit import AuditLog, AuditQuery, AuditRecord, audit_fields, audit_record_of
from domain.search import Page

logger = logging.getLogger(__name__)

LINGER = 0.05
#: Records per insert: a backlog (a burst, a log that was down) goes in bounded inserts, each well
#: inside the client's operation timeout, never as one insert that times out and is retried whole.
SHIP_LINES = 500
#: Records waiting to be shipped past which appends wait for the shipping (back-pressure): a server
#: that stores audit records slower than requests make them would otherwise let the journal fall
#: further and further behind, and other replicas see decisions seconds late (CONTRACT.md section 6:
#: within 1 s). 200 records are about a quarter of a second of an embedded server's inserts.
BACKLOG_RECORDS = 200
#: The longest an append waits for room: back-pressure slows answers down, it never stops them.
BACKLOG_WAIT = 2.0
SWEEP_SECONDS = 60.0
RETRY_MIN, RETRY_MAX = 0.1, 5.0
STOP_WAIT = 5.0
SUFFIX = ".jsonl"


def encode_record(record: AuditRecord) -> bytes:
    line = audit_fields(record)
    line["at"] = record.at.isoformat()
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode_records(data: bytes, source: str) -> list[AuditRecord]:
    """Complete lines only; a torn last line (a process killed mid-write) is reported and skipped."""
    records = []
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            if not raw.endswith(b"\n"):
                raise ValueError("the line is incomplete")
            line: dict[str, Any] = json.loads(raw)
            records.append(audit_record_of({**line, "at": datetime.fromisoformat(line["at"])}))
        except (ValueError, KeyError, TypeError) as error:
            logger.error("audit_journal.line_unreadable segment=%s line=%d: %s", source, number, error)
    return records


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JournaledAuditLog(AuditLog):
    """Wraps the durable log; ``start`` before use, ``close`` at exit (ships what is left)."""

    def __init__(
        self,
        durable: AuditLog,
        directory: Path,
        *,
        linger: float = LINGER,
        backlog: Callable[[int], None] | None = None,
    ) -> None:
        """``backlog``: told the records not yet shipped whenever that changes (the operators' gauge)."""
        self.durable = durable
        self.backlog = backlog or (lambda records: None)
        self.directory = directory
        self.linger = linger
        self.segment = directory / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        self._fd = -1
        self._written = 0  # bytes appended to the segment since it was last emptied
        self._shipped = 0  # of which already in the durable log
        self._ship_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pending = 0  # records appended and not yet shipped
        self._room = asyncio.Event()  # set while the backlog is small, or the durable log is failing
        self._room.set()
        self._failing = False

    async def start(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(self.segment, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        await self.recover_orphans()
        self._task = asyncio.create_task(self._run(), name="eyewear-audit-journal")

    async def append(self, record: AuditRecord) -> None:
        await self.append_many((record,))

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        """Synchronous on purpose: the lines are in the file when this returns (one ``write``)."""
        if self._fd < 0:
            raise RuntimeError("the audit journal is not open")
        data = b"".join(encode_record(record) for record in records)
        _write_all(self._fd, data)
        self._written += len(data)
        self._pending += len(records)
        self.backlog(self._pending)
        self._wake.set()
        if self._pending > BACKLOG_RECORDS and not self._failing:
            # On disk already (the decision is recorded); this only waits for the shipping to catch
            # up, and not while the durable log fails: an outage must not stop the answers.
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BACKLOG_WAIT):
                    await self._room.wait()

    async def query(self, query: AuditQuery) -> Page[AuditRecord]:
        await self.flush()
        return await self.durable.query(query)

    async def flush(self) -> None:
        """Ships every line appended so far; raises what the durable log raised."""
        async with self._ship_lock:
            await self._ship_own()

    @property
    def pending_bytes(self) -> int:
        return self._written - self._shipped

    async def close(self) -> None:
        """Ships what is left; if the durable log is down, the segment stays for the next process."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_WAIT)
        if self._fd < 0:
            return
        try:
            await self.flush()
        except Exception as error:
            os.fdatasync(self._fd)
            logger.warning(
                "audit_journal.left_for_recovery segment=%s bytes=%d: %s: %s",
                self.segment,
                self.pending_bytes,
                type(error).__name__,
                error,
            )
            os.close(self._fd)
            self._fd = -1
            return
        self.segment.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1

    async def recover_orphans(self) -> int:
        """Ships and removes the segments no live process holds; returns the records shipped."""
        shipped = 0
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path == self.segment:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another process recovered it meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                records = decode_records(_read_all(fd), path.name)
                for start in range(0, len(records), SHIP_LINES):
                    await self.durable.append_many(records[start : start + SHIP_LINES])
                path.unlink(missing_ok=True)
                shipped += len(records)
                logger.warning("audit_journal.recovered segment=%s records=%d", path.name, len(records))
            finally:
                os.close(fd)
        return shipped

    async def _ship_own(self) -> None:
        """Ships the pending lines ``SHIP_LINES`` at a time, each group marked shipped once stored."""
        end = self._written
        if end == self._shipped:
            return
        data = os.pread(self._fd, end - self._shipped, self._shipped)
        lines = data.splitlines(keepends=True)
        for start in range(0, len(lines), SHIP_LINES):
            group = lines[start : start + SHIP_LINES]
            try:
                await self.durable.append_many(decode_records(b"".join(group), self.segment.name))
            except BaseException:
                self._failing = True
                self._room.set()  # appends go on at disk speed while the log is away
                raise
            self._failing = False
            self._shipped += sum(map(len, group))
            self._pending = max(0, self._pending - len(group))
            self.backlog(self._pending)
            if self._pending <= BACKLOG_RECORDS:
                self._room.set()
        if self._shipped == self._written:  # no await since the check: nothing can be appended in between
            os.ftruncate(self._fd, 0)
            self._written = self._shipped = 0
            self._pending = 0

    async def _run(self) -> None:
        """Ships after each burst of appends (waiting ``linger`` to gather it), sweeps orphans now
        and then, and backs off while the durable log fails (the lines wait on disk)."""
        delay = RETRY_MIN
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + SWEEP_SECONDS
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_sweep):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.linger)
            try:
                await self.flush()
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + SWEEP_SECONDS
                    await self.recover_orphans()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await asyncio.to_thread(os.fdatasync, self._fd)
                logger.warning(
                    "audit_journal.ship_failed bytes=%d retry_in=%.1fs: %s: %s",
                    self.pending_bytes,
                    delay,
                    type(error).__name__,
                    error,
                )
                self._wake.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
            else:
                delay = RETRY_MIN


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
