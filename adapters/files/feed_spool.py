"""Uploaded feeds on this host's disk until their run has read them (``$EYEWEAR_DATA_DIR/spool``).

Each file is named for its run and for the process that wrote it (``<run_id>--<pid>-<start><suffix>``,
mode 0600). The process deletes its files when their runs end; a process that was killed cannot, so
``sweep`` deletes the files of processes that are gone (every process sharing the data dir sweeps
at start and then now and then), never a file a live process is still writing or reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from adapters.feeds.readers import FeedFile, format_for
from application.ingestion import FeedSource
from application.run_execution import FeedMissing, FeedStore
from domain.ingestion import IngestionRun
from domain.ports import Executors

_SEPARATOR = "--"


class FeedSpool:
    def __init__(self, directory: Path, executors: Executors) -> None:
        self.directory = directory
        self.executors = executors
        host, pid, start = executors.current().rsplit(":", 2)
        self.host = host
        self.tag = f"{pid}-{start}"

    def create(self, run_id: str, suffix: str) -> tuple[int, Path]:
        """A new, empty file for ``run_id``'s feed, open for writing (the descriptor and its path)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{run_id}{_SEPARATOR}{self.tag}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return fd, path

    def find(self, run_id: str) -> Path | None:
        """The file of ``run_id``'s feed, whoever wrote it."""
        if not self.directory.is_dir():
            return None
        return next(iter(sorted(self.directory.glob(f"{run_id}{_SEPARATOR}*"))), None)

    def sweep(self) -> list[Path]:
        """Deletes the files of processes that are gone; the paths it deleted."""
        if not self.directory.is_dir():
            return []
        removed: list[Path] = []
        for path in self.directory.iterdir():
            writer = self._writer_of(path.name)
            if writer is not None and self.executors.gone(writer):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def _writer_of(self, name: str) -> str | None:
        _, separator, rest = name.partition(_SEPARATOR)
        pid, _, start = rest.partition("-")
        start = start.split(".")[0]
        if not separator or not pid.isdigit() or not start:
            return None  # not a file of ours: left alone
        return f"{self.host}:{pid}:{start}"


async def spool_chunks(spool: FeedSpool, run_id: str, suffix: str, chunks: AsyncIterator[bytes]) -> Path:
    """Writes a stream to a new spool file; the file is removed if the stream fails."""
    handle, path = spool.create(run_id, suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in chunks:
                out.write(chunk)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return path


class SpooledFeeds(FeedStore):
    """Feeds on this host's disk: the embedded default, where the accepting process executes its runs."""

    def __init__(self, spool: FeedSpool) -> None:
        self.spool = spool

    async def put(self, run_id: str, suffix: str, chunks: AsyncIterator[bytes]) -> None:
        await spool_chunks(self.spool, run_id, suffix, chunks)

    @contextlib.asynccontextmanager
    async def opened(self, run: IngestionRun) -> AsyncIterator[FeedSource]:
        path = self.spool.find(run.run_id)
        if path is None:
            raise FeedMissing(f"no spooled file for run {run.run_id}")
        yield FeedFile(path, *format_for(path), name=run.source)

    async def discard(self, run_id: str) -> None:
        path = self.spool.find(run_id)
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def keep(self, run_id: str) -> None:
        """No other executor could take the run again here: the file goes like any other."""
        await self.discard(run_id)
